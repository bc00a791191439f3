# C fields for zio/_msgslots.py where Cython builds it (setup.py); plain Python ignores this file.
cdef class MessageSlots:
    cdef public object _p
    cdef public object _c
    cdef public object _payload
    cdef public object _routing_id
