"""`mechgrade list`."""

import click

from mechgrade.cli.common import guard


@click.command("list")
@guard
def list_lessons() -> None:
    """List the installed lessons and their exercises."""
    from mechgrade.spec import available_lessons, load_lesson

    for lesson_id in available_lessons():
        lesson = load_lesson(lesson_id)
        public = sum(c.points for _, _, c in lesson.iter_cases())
        click.echo(f"{lesson.id}: {lesson.title} ({lesson.total_points:g} points; {public:g} in public cases)")
        width = max(len(e.id) for e in lesson.exercises)  # one column, however long an id
        for exercise in lesson.exercises:
            names = ", ".join(f.name for f in exercise.functions)
            click.echo(f"  {exercise.id:<{width}}  {exercise.title}: {names}")
