# C types for zio/_fastpath.py where Cython builds it (setup.py); plain Python ignores this file.
# pyzmq's own declarations: its compiled send and recv are called directly (cpdef methods,
# "for direct-cython access" in pyzmq's .pxd), and a frame's ``more`` is read from its struct.
cimport cython
from zmq.backend.cython._zmq cimport Socket as ZSocket, Frame as ZFrame
from zio._msgslots cimport MessageSlots


cdef class PortLock:
    cdef public list token
    cdef public int waiters
    cdef object _cond


cdef class FastPath:
    cdef public PortLock lock
    cdef public list token
    # typed: only a pyzmq socket (or None) is ever held, so the direct calls are safe
    cdef public ZSocket send_ready
    cdef public ZSocket recv_ready
    cdef public object origin
    cdef public int recv_wait
    cdef public bint zero_copy
    cdef public object prefix_seen

    cpdef bint known(self, bytes prefix)


@cython.locals(sock=ZSocket, count=Py_ssize_t, last=Py_ssize_t, i=Py_ssize_t)
cdef int _send_short(FastPath fast, MessageSlots msg) except -1
@cython.locals(sock=ZSocket, frame=ZFrame, coord=ZFrame, msg=MessageSlots)
cdef object _recv_short(FastPath fast, bint block)
cdef void _given_back(object port, FastPath fast) except *

cdef Py_ssize_t _BIG
cdef Py_ssize_t _COORD
cdef int _NOBLOCK
cdef int _NOBLOCK_SNDMORE
cdef type _Message
