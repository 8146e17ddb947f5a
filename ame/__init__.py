"""The ``ame`` command: one Typer app that composes the sub-apps defined next to the code they drive."""
