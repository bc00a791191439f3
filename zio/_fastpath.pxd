# C types for zio/_fastpath.py where Cython builds it (setup.py); plain Python ignores this file.
cdef class PortLock:
    cdef public list token
    cdef public int waiters
    cdef object _cond


cdef class FastPath:
    cdef public PortLock lock
    cdef public list token
    cdef public object send_ready
    cdef public object recv_ready
    cdef public object origin
    cdef public int recv_wait
    cdef public bint zero_copy
    cdef public object prefix_seen

    cpdef bint known(self, bytes prefix)


cdef int _send_short(FastPath fast, object msg) except -1
cdef object _recv_short(FastPath fast, bint block)
cdef void _given_back(object port, FastPath fast) except *

cdef Py_ssize_t _BIG
cdef Py_ssize_t _COORD
