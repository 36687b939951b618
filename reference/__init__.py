"""Reference solutions, one package per lesson. Never shipped to students."""
