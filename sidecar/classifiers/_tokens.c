/* The sums behind the `tokens` classifier's estimate, in one pass over the UTF-8 bytes.
 *
 * tokens.py computes the same two numbers with `bytes.translate`, `zlib.adler32` and an
 * integer's bit count (several passes and a copy of the text each); this does them in one
 * loop without copies. See tokens.py for what they mean; its `_python_counts` is the
 * reference this must equal byte for byte.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Bits set in each byte: a table is cheaper than popcount where the CPU baseline has none. */
static unsigned char bit_count[256];

/* counts(data, weights, flags) -> (units, starts)
 *
 * Continuation bytes of UTF-8 (0x80-0xBF) are skipped, so each character counts once, by
 * its lead byte. units: the sum of weights[byte]. starts: the number of bits on in
 * flags[byte] that were off in the flags of the character before (none before the first).
 */
static PyObject *
counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, weights, flags;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "counts() takes data, weights and flags");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &weights, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &flags, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&weights);
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL;
    if (weights.len != 256 || flags.len != 256) {
        PyErr_SetString(PyExc_ValueError, "weights and flags must be 256-byte tables");
        goto done;
    }
    const unsigned char *p = data.buf;
    const unsigned char *end = p + data.len;
    const unsigned char *w = weights.buf;
    const unsigned char *f = flags.buf;
    unsigned long long units = 0, starts = 0;
    unsigned int before = 0;
    /* The interpreter lock is kept: a 2 KB prompt takes ~2 µs, less than handing the lock
     * to another thread and waiting to get it back. */
    for (; p < end; p++) {
        unsigned char byte = *p;
        if ((byte & 0xC0) == 0x80) {
            continue; /* a continuation byte */
        }
        unsigned int now = f[byte];
        units += w[byte];
        starts += bit_count[now & ~before & 0xFF];
        before = now;
    }
    result = Py_BuildValue("(KK)", units, starts);
done:
    PyBuffer_Release(&flags);
    PyBuffer_Release(&weights);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"counts", (PyCFunction)(void (*)(void))counts, METH_FASTCALL,
     "counts(data, weights, flags) -> (units, starts): see sidecar/classifiers/tokens.py"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tokens",
    "The tokens classifier's sums in C (see tokens.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__tokens(void)
{
    for (int i = 0; i < 256; i++) {
        bit_count[i] = (unsigned char)((i & 1) + bit_count[i >> 1]);
    }
    return PyModule_Create(&module);
}
