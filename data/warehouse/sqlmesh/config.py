"""SQLMesh reads this when run as ``sqlmesh`` inside this folder; ``ame warehouse`` builds the same config."""

from data.warehouse.project import config_from_environment

config = config_from_environment()
