"""The storage of a ``zio.Message``: its four slots, in a base class of their own.

Where Cython builds this module (``setup.py``, C types in ``_msgslots.pxd``) the slots
are C fields, which the compiled short path (``zio/_fastpath.py``) reads and writes
without Python's attribute lookup; as Python they are ``__slots__``. ``Message`` adds
the behaviour (``zio/message.py``).
"""


class MessageSlots:
    """A message's prefix (``_p``), coord (``_c``), payload parts and routing id; see
    ``zio.Message`` for what each holds."""

    __slots__ = ("_p", "_c", "_payload", "_routing_id")
