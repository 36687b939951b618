"""`mechgrade list`."""

import click

from mechgrade.cli.common import guard


@click.command("list", short_help="List the installed lessons and where each came from.")
@guard
def list_lessons() -> None:
    """List the installed lessons, the package each came from, and their exercises."""
    from mechgrade import lessons
    from mechgrade.errors import MechgradeError
    from mechgrade.spec import load_lesson

    for lesson_id, plugin in sorted(lessons.installed().items()):
        try:
            lesson = load_lesson(lesson_id)
        except MechgradeError as err:  # one broken lesson never hides the others
            click.echo(f"{lesson_id} (from {plugin.origin}): cannot be used: {err}")
            continue
        public = sum(c.points for _, _, c in lesson.iter_cases())
        click.echo(f"{lesson.id}: {lesson.title} ({lesson.total_points:g} points; {public:g} in public cases; from {plugin.origin})")
        width = max(len(e.id) for e in lesson.exercises)  # one column, however long an id
        for exercise in lesson.exercises:
            names = ", ".join(f.name for f in exercise.functions)
            click.echo(f"  {exercise.id:<{width}}  {exercise.title}: {names}")
    for bad in lessons.broken():
        click.echo(f"{bad.name} (from {bad.origin}): cannot be used: {bad.reason}")
