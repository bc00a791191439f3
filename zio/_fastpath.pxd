# C types for zio/_fastpath.py where Cython builds it (setup.py); plain Python ignores this file.
# pyzmq's own declarations: its compiled send and recv are called directly (cpdef methods,
# "for direct-cython access" in pyzmq's .pxd), and a frame's ``more`` is read from its struct.
cimport cython
from zmq.backend.cython._zmq cimport Socket as ZSocket, Frame as ZFrame


cdef extern from *:
    """
    /* zio.Message as C sees it: a plain Python class whose four __slots__ CPython lays out
       after the object header in the order of their sorted names. _fastpath.py checks this
       at import (_layout_is_as_declared) and refuses to load where it differs. */
    typedef struct {
        PyObject_HEAD
        PyObject *_c;
        PyObject *_p;
        PyObject *_payload;
        PyObject *_routing_id;
    } zio_MessageObject;

    /* A new Message with every slot None (as Python leaves them unset, and Cython's
       assignments expect a value to release) */
    static PyObject *zio_new_message(PyObject *cls) {
        PyTypeObject *type = (PyTypeObject *)cls;
        zio_MessageObject *msg = (zio_MessageObject *)type->tp_alloc(type, 0);
        if (msg == NULL)
            return NULL;
        Py_INCREF(Py_None); msg->_c = Py_None;
        Py_INCREF(Py_None); msg->_p = Py_None;
        Py_INCREF(Py_None); msg->_payload = Py_None;
        Py_INCREF(Py_None); msg->_routing_id = Py_None;
        return (PyObject *)msg;
    }

    /* Whether every slot of a Message holds a value (one made without __init__ may not) */
    static int zio_message_complete(PyObject *obj) {
        zio_MessageObject *msg = (zio_MessageObject *)obj;
        return msg->_c != NULL && msg->_p != NULL && msg->_payload != NULL && msg->_routing_id != NULL;
    }
    """
    ctypedef class zio.message.Message [object zio_MessageObject, check_size error]:
        cdef object _c
        cdef object _p
        cdef object _payload
        cdef object _routing_id

    Message _new_message "zio_new_message" (object cls)
    bint _message_complete "zio_message_complete" (Message msg)


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
cdef int _send_short(FastPath fast, Message msg) except -1
@cython.locals(sock=ZSocket, frame=ZFrame, coord=ZFrame, msg=Message)
cdef object _recv_short(FastPath fast, bint block)
cdef void _given_back(object port, FastPath fast) except *
@cython.locals(msg=Message)
cpdef bint _layout_is_as_declared()

cdef Py_ssize_t _BIG
cdef Py_ssize_t _COORD
cdef int _NOBLOCK
cdef int _NOBLOCK_SNDMORE
