"""``python -m atlas_tasks``: the same as the ``atlas-tasks`` command."""

from atlas_tasks.cli import main

if __name__ == "__main__":
    main()
