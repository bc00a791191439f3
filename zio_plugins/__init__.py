"""The discovery backends that ship with zio, registered through the ``zio`` entry points."""
