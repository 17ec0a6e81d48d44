/* Finished spans to OTLP protobuf bytes, as protobuf.py's Python encoder writes them.
 *
 * protobuf.py describes the messages and the wire format; its `_python_encode_span` and
 * `_python_attributes` are the reference these must equal byte for byte. The spans the
 * sidecar makes hold plain values (str, int, float, bool, None, bytes, tuples, lists and
 * dicts of them), and those are written here in one pass into one buffer, without the
 * bytes object per field and list per message of the Python encoder: ~12x fewer
 * instructions a span (10k against 126k, valgrind --tool=callgrind). No string cache:
 * writing a str takes less than looking it up would.
 *
 * Anything else is "unusual": a subclass of a plain type (whose conversion runs code of
 * its own), an int outside int64, a str without a UTF-8 form (lone surrogates), another
 * kind of value, an unexpected type where the SDK puts ids, times or counts. On meeting
 * one, the C encoder drops what it wrote and calls the Python encoder for the whole span
 * (or mapping), which then converts, leaves out and logs, or raises, exactly as it always
 * does; no value's own code runs here, and nothing is logged twice. Exceptions raised by
 * what both encoders call in the same order (the span's properties, a mapping's items)
 * propagate from here as they would from there.
 *
 * The interpreter lock is kept: a span takes ~2.5 µs, less than handing the lock over.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FAILED (-1) /* an exception is set: it propagates */
#define DONE 0
#define UNUSUAL 1 /* no exception is set: the Python encoder decides */

/* Nested sequences and mappings deeper than this go to the Python encoder: there, and
 * not here, the interpreter's recursion limit applies to them. */
#define MAX_DEPTH 32

/* What `configure` hands over from protobuf.py. */
static PyObject *span_fallback;       /* _python_encode_span(span) -> bytes */
static PyObject *attributes_fallback; /* _python_attributes(number, mapping) -> bytes */
static PyObject *trace_state_text;    /* _trace_state(context) -> str */
static PyObject *kinds;               /* ((SpanKind member, its Span.kind field), ...) */
static PyObject *statuses;            /* ((StatusCode member, its Status.code field), ...) */

/* The SDK's own types whose properties return a field of theirs as it is (protobuf.py
 * checks that they do): the fields are read directly, which saves calling ~15 Python
 * functions a span (~4 µs, more than the rest of the encoding). NULL: properties only. */
static PyObject *plain_spans;   /* (ReadableSpan, PreEncodedSpan): exact types */
static PyObject *plain_context; /* SpanContext: a tuple (trace_id, span_id, is_remote, ...) */
static PyObject *plain_status;  /* Status */

static PyObject *sixty_four, *uint64_max;
static PyObject *s_context, *s_parent, *s_trace_id, *s_span_id, *s_trace_state, *s_is_remote,
    *s_name, *s_kind, *s_start_time, *s_end_time, *s_attributes, *s_dropped_attributes,
    *s_events, *s_dropped_events, *s_links, *s_dropped_links, *s_status, *s_status_code,
    *s_description, *s_timestamp, *s_items, *p_context, *p_parent, *p_name, *p_kind,
    *p_start_time, *p_end_time, *p_attributes, *p_events, *p_links, *p_status, *p_status_code,
    *p_description;

/* The output: on the stack while it is small (a span of the sidecar is ~1 KB), then on
 * the heap. */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    char local[4096];
} Buf;

static void
buf_init(Buf *b)
{
    b->data = b->local;
    b->len = 0;
    b->cap = (Py_ssize_t)sizeof(b->local);
}

static void
buf_release(Buf *b)
{
    if (b->data != b->local) {
        PyMem_Free(b->data);
    }
}

static int
buf_grow(Buf *b, Py_ssize_t extra)
{
    if (extra > PY_SSIZE_T_MAX - b->len) {
        PyErr_NoMemory();
        return FAILED;
    }
    Py_ssize_t need = b->len + extra;
    Py_ssize_t cap = b->cap > PY_SSIZE_T_MAX / 2 ? need : b->cap * 2;
    if (cap < need) {
        cap = need;
    }
    char *data;
    if (b->data == b->local) {
        data = PyMem_Malloc((size_t)cap);
        if (data != NULL) {
            memcpy(data, b->local, (size_t)b->len);
        }
    }
    else {
        data = PyMem_Realloc(b->data, (size_t)cap);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    b->data = data;
    b->cap = cap;
    return DONE;
}

static inline int
reserve(Buf *b, Py_ssize_t extra)
{
    return extra <= b->cap - b->len ? DONE : buf_grow(b, extra);
}

/* Callers reserve room first. */
static inline void
put_raw_varint(Buf *b, uint64_t value)
{
    unsigned char *p = (unsigned char *)b->data + b->len;
    while (value >= 0x80) {
        *p++ = (unsigned char)(value | 0x80);
        value >>= 7;
    }
    *p++ = (unsigned char)value;
    b->len = (Py_ssize_t)((char *)p - b->data);
}

static inline void
put_raw_le(Buf *b, uint64_t value, int size)
{
    unsigned char *p = (unsigned char *)b->data + b->len;
    for (int i = 0; i < size; i++) {
        p[i] = (unsigned char)(value >> (8 * i));
    }
    b->len += size;
}

static inline void
put_raw_be(Buf *b, uint64_t value)
{
    unsigned char *p = (unsigned char *)b->data + b->len;
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(value >> (56 - 8 * i));
    }
    b->len += 8;
}

static int
put_bytes(Buf *b, const char *data, Py_ssize_t size)
{
    if (reserve(b, size) < 0) {
        return FAILED;
    }
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += size;
    return DONE;
}

/* A varint field (wire type 0); a tag below 0x80. */
static int
put_varint_field(Buf *b, unsigned char tag, uint64_t value)
{
    if (reserve(b, 11) < 0) {
        return FAILED;
    }
    b->data[b->len++] = (char)tag;
    put_raw_varint(b, value);
    return DONE;
}

/* A length-delimited field whose payload is known. */
static int
put_field(Buf *b, uint64_t tag, const char *data, Py_ssize_t size)
{
    if (size > PY_SSIZE_T_MAX - 20) {
        PyErr_NoMemory();
        return FAILED;
    }
    if (reserve(b, 20 + size) < 0) {
        return FAILED;
    }
    put_raw_varint(b, tag);
    put_raw_varint(b, (uint64_t)size);
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += size;
    return DONE;
}

static inline int
varint_width(uint64_t value)
{
    int width = 1;
    while (value >= 0x80) {
        value >>= 7;
        width++;
    }
    return width;
}

/* A length-delimited field whose payload is written next: one byte is kept for its
 * length, which `close_field` writes, moving the payload if the length takes more. */
static int
open_field(Buf *b, uint64_t tag, Py_ssize_t *mark)
{
    if (reserve(b, 11) < 0) {
        return FAILED;
    }
    put_raw_varint(b, tag);
    *mark = b->len++;
    return DONE;
}

static int
close_field(Buf *b, Py_ssize_t mark)
{
    Py_ssize_t size = b->len - mark - 1;
    if (size < 0x80) {
        b->data[mark] = (char)size;
        return DONE;
    }
    int width = varint_width((uint64_t)size);
    if (reserve(b, width - 1) < 0) {
        return FAILED;
    }
    memmove(b->data + mark + width, b->data + mark + 1, (size_t)size);
    b->len = mark;
    put_raw_varint(b, (uint64_t)size);
    b->len = mark + width + size;
    return DONE;
}

/* An exception met converting a value: the Python encoder will meet it too, and knows
 * what to do with it. Anything that is not an Exception (an interrupt) propagates. */
static int
unusual(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return UNUSUAL;
    }
    return FAILED;
}

/* A str field (an exact str): its UTF-8, as `str.encode()` writes it. */
static int
put_str(Buf *b, uint64_t tag, PyObject *text)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return unusual();
    }
#endif
    if (PyUnicode_IS_ASCII(text)) {
        return put_field(b, tag, (const char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text));
    }
    /* A copy, not PyUnicode_AsUTF8AndSize: that one keeps the UTF-8 in the str for its
     * lifetime. */
    PyObject *utf8 = PyUnicode_AsUTF8String(text);
    if (utf8 == NULL) {
        return unusual();
    }
    int result = put_field(b, tag, PyBytes_AS_STRING(utf8), PyBytes_GET_SIZE(utf8));
    Py_DECREF(utf8);
    return result;
}

/* `_string(number, value)`: nothing for None or "". */
static int
put_optional_str(Buf *b, unsigned char tag, PyObject *value)
{
    if (value == Py_None) {
        return DONE;
    }
    if (!PyUnicode_CheckExact(value)) {
        return UNUSUAL;
    }
    return PyUnicode_GET_LENGTH(value) ? put_str(b, tag, value) : DONE;
}

/* An exact int in [0, 2**64): DONE, or UNUSUAL (negative, or past 64 bits).
 * PyLong_AsLongLongAndOverflow first: PyLong_AsUnsignedLongLong takes ~4x as long. */
static int
as_uint64(PyObject *value, uint64_t *out)
{
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow == 0) {
        if (n == -1 && PyErr_Occurred()) {
            return unusual();
        }
        *out = (uint64_t)n;
        return n < 0 ? UNUSUAL : DONE;
    }
    if (overflow < 0) {
        return UNUSUAL;
    }
    int fits = PyObject_RichCompareBool(value, uint64_max, Py_LE);
    if (fits <= 0) {
        return fits < 0 ? unusual() : UNUSUAL;
    }
    *out = PyLong_AsUnsignedLongLongMask(value);
    return DONE;
}

/* `_uint(number, value)`: nothing for None or 0. */
static int
put_count(Buf *b, unsigned char tag, PyObject *value)
{
    if (value == Py_None) {
        return DONE;
    }
    if (!PyLong_CheckExact(value)) {
        return UNUSUAL;
    }
    uint64_t n;
    int result = as_uint64(value, &n);
    if (result != DONE) {
        return result;
    }
    return n ? put_varint_field(b, tag, n) : DONE;
}

/* A fixed64 time (`if time: tag + pack(time)`): nothing for None or 0. */
static int
put_time(Buf *b, unsigned char tag, PyObject *value)
{
    if (value == Py_None) {
        return DONE;
    }
    if (!PyLong_CheckExact(value)) {
        return UNUSUAL;
    }
    uint64_t n;
    int result = as_uint64(value, &n);
    if (result != DONE || n == 0) {
        return result;
    }
    if (reserve(b, 9) < 0) {
        return FAILED;
    }
    b->data[b->len++] = (char)tag;
    put_raw_le(b, n, 8);
    return DONE;
}

/* `id.to_bytes(size, "big")` (size 8 or 16) after the two bytes `tag, size`. */
static int
put_id(Buf *b, unsigned char tag, PyObject *id, int size)
{
    if (!PyLong_CheckExact(id)) {
        return UNUSUAL;
    }
    uint64_t high = 0, low;
    int result;
    if (size == 8) {
        result = as_uint64(id, &low);
    }
    else {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(id, &overflow);
        if (overflow == 0) {
            if (n == -1 && PyErr_Occurred()) {
                return unusual();
            }
            low = (uint64_t)n;
            result = n < 0 ? UNUSUAL : DONE;
        }
        else if (overflow < 0) {
            result = UNUSUAL;
        }
        else {
            PyObject *shifted = PyNumber_Rshift(id, sixty_four);
            if (shifted == NULL) {
                return unusual();
            }
            result = as_uint64(shifted, &high); /* UNUSUAL: past 128 bits */
            Py_DECREF(shifted);
            low = PyLong_AsUnsignedLongLongMask(id);
        }
    }
    if (result != DONE) {
        return result;
    }
    if (reserve(b, 2 + size) < 0) {
        return FAILED;
    }
    b->data[b->len++] = (char)tag;
    b->data[b->len++] = (char)size;
    if (size == 16) {
        put_raw_be(b, high);
    }
    put_raw_be(b, low);
    return DONE;
}

/* A bool, as the Python encoder takes it in `if flag`: True or False only. */
static int
flag(PyObject *value, int *on)
{
    if (value == Py_True || value == Py_False) {
        *on = value == Py_True;
        return DONE;
    }
    return UNUSUAL;
}

static int key_value(Buf *b, PyObject *key, PyObject *value, int depth);

/* An AnyValue message's content (`_any_value`), for the plain types. */
static int
any_value(Buf *b, PyObject *value, int depth)
{
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyUnicode_Type) {
        return put_str(b, 0x0a, value);
    }
    if (type == &PyLong_Type) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            return UNUSUAL; /* outside int64 */
        }
        if (n == -1 && PyErr_Occurred()) {
            return unusual();
        }
        return put_varint_field(b, 0x18, (uint64_t)n); /* negative: ten bytes */
    }
    if (type == &PyFloat_Type) {
        if (reserve(b, 9) < 0) {
            return FAILED;
        }
        b->data[b->len++] = 0x21;
        /* What struct.pack("<d") writes: nan and inf included, bits as they are. */
        if (PyFloat_Pack8(PyFloat_AS_DOUBLE(value), b->data + b->len, 1) < 0) {
            return unusual();
        }
        b->len += 8;
        return DONE;
    }
    if (type == &PyBool_Type) {
        return put_varint_field(b, 0x10, value == Py_True);
    }
    if (value == Py_None) {
        return DONE;
    }
    if (type == &PyBytes_Type) {
        return put_field(b, 0x3a, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    }
    if (type == &PyTuple_Type || type == &PyList_Type) {
        if (depth >= MAX_DEPTH) {
            return UNUSUAL;
        }
        Py_ssize_t array, item;
        int result = open_field(b, 0x2a, &array);
        /* No code of any value runs here, so a list cannot change while it is read. */
        Py_ssize_t size = PySequence_Fast_GET_SIZE(value);
        PyObject **items = PySequence_Fast_ITEMS(value);
        for (Py_ssize_t i = 0; i < size && result == DONE; i++) {
            result = open_field(b, 0x0a, &item);
            if (result == DONE) {
                result = any_value(b, items[i], depth + 1);
            }
            if (result == DONE) {
                result = close_field(b, item);
            }
        }
        return result == DONE ? close_field(b, array) : result;
    }
    if (type == &PyDict_Type) {
        if (depth >= MAX_DEPTH) {
            return UNUSUAL;
        }
        Py_ssize_t list, entry, position = 0;
        PyObject *key, *item;
        int result = open_field(b, 0x32, &list);
        while (result == DONE && PyDict_Next(value, &position, &key, &item)) {
            if (!PyUnicode_CheckExact(key)) {
                return UNUSUAL; /* `str(key)` is the Python encoder's to call */
            }
            result = open_field(b, 0x0a, &entry);
            if (result == DONE) {
                result = key_value(b, key, item, depth + 1);
            }
            if (result == DONE) {
                result = close_field(b, entry);
            }
        }
        return result == DONE ? close_field(b, list) : result;
    }
    return UNUSUAL;
}

/* A KeyValue message's content; the key an exact str. */
static int
key_value(Buf *b, PyObject *key, PyObject *value, int depth)
{
    Py_ssize_t mark;
    int result = put_str(b, 0x0a, key);
    if (result == DONE) {
        result = open_field(b, 0x12, &mark);
    }
    if (result == DONE) {
        result = any_value(b, value, depth);
    }
    return result == DONE ? close_field(b, mark) : result;
}

/* The common attribute, an ASCII key and an ASCII str, int64, float or bool value: all
 * its lengths are known before it is written, so it is written in one go. GENERAL: not
 * one of those (the general path decides). */
#define GENERAL 2

static int
plain_attribute(Buf *b, uint64_t tag, PyObject *key, PyObject *value)
{
    PyTypeObject *type = Py_TYPE(value);
    unsigned char scalar[11];
    const char *text = NULL;
    Py_ssize_t text_size = 0, value_size;
    /* Not ASCII either: a str of Python 3.11's old C API not yet "ready" (the general path
     * readies it). */
    if (!PyUnicode_IS_ASCII(key)) {
        return GENERAL;
    }
    if (type == &PyUnicode_Type) {
        if (!PyUnicode_IS_ASCII(value)) {
            return GENERAL;
        }
        text = (const char *)PyUnicode_DATA(value);
        text_size = PyUnicode_GET_LENGTH(value);
        value_size = 1 + varint_width((uint64_t)text_size) + text_size;
    }
    else if (type == &PyLong_Type) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            return GENERAL;
        }
        if (n == -1 && PyErr_Occurred()) {
            return unusual();
        }
        uint64_t bits = (uint64_t)n; /* a negative int: ten bytes */
        value_size = 1;
        scalar[0] = 0x18;
        while (bits >= 0x80) {
            scalar[value_size++] = (unsigned char)(bits | 0x80);
            bits >>= 7;
        }
        scalar[value_size++] = (unsigned char)bits;
    }
    else if (type == &PyFloat_Type) {
        scalar[0] = 0x21;
        if (PyFloat_Pack8(PyFloat_AS_DOUBLE(value), (char *)scalar + 1, 1) < 0) {
            return unusual();
        }
        value_size = 9;
    }
    else if (type == &PyBool_Type) {
        scalar[0] = 0x10;
        scalar[1] = value == Py_True;
        value_size = 2;
    }
    else {
        return GENERAL;
    }
    Py_ssize_t key_size = PyUnicode_GET_LENGTH(key);
    Py_ssize_t pair_size = 1 + varint_width((uint64_t)key_size) + key_size + 1 +
                           varint_width((uint64_t)value_size) + value_size;
    if (reserve(b, 20 + pair_size) < 0) {
        return FAILED;
    }
    put_raw_varint(b, tag);
    put_raw_varint(b, (uint64_t)pair_size);
    b->data[b->len++] = 0x0a;
    put_raw_varint(b, (uint64_t)key_size);
    memcpy(b->data + b->len, PyUnicode_DATA(key), (size_t)key_size);
    b->len += key_size;
    b->data[b->len++] = 0x12;
    put_raw_varint(b, (uint64_t)value_size);
    if (text != NULL) {
        b->data[b->len++] = 0x0a;
        put_raw_varint(b, (uint64_t)text_size);
        memcpy(b->data + b->len, text, (size_t)text_size);
        b->len += text_size;
    }
    else {
        memcpy(b->data + b->len, scalar, (size_t)value_size);
        b->len += value_size;
    }
    return DONE;
}

static int
attribute(Buf *b, uint64_t tag, PyObject *key, PyObject *value)
{
    if (!PyUnicode_CheckExact(key)) {
        return UNUSUAL;
    }
    int result = plain_attribute(b, tag, key, value);
    if (result != GENERAL) {
        return result;
    }
    Py_ssize_t mark;
    result = open_field(b, tag, &mark);
    if (result == DONE) {
        result = key_value(b, key, value, 0);
    }
    return result == DONE ? close_field(b, mark) : result;
}

/* `_attributes(number, mapping)`: a KeyValue field per item. */
static int
attributes(Buf *b, uint64_t number, PyObject *mapping)
{
    uint64_t tag = (number << 3) | 2;
    if (mapping == Py_None) {
        return DONE;
    }
    if (PyDict_CheckExact(mapping)) {
        Py_ssize_t position = 0;
        PyObject *key, *value;
        while (PyDict_Next(mapping, &position, &key, &value)) {
            int result = attribute(b, tag, key, value);
            if (result != DONE) {
                return result;
            }
        }
        return DONE;
    }
    /* Any other mapping (the span's is a mappingproxy) as the Python encoder reads it:
     * `if not mapping`, then `for key, value in mapping.items()`. */
    int present = PyObject_IsTrue(mapping);
    if (present <= 0) {
        return present < 0 ? FAILED : DONE;
    }
    PyObject *items = PyObject_CallMethodNoArgs(mapping, s_items);
    if (items == NULL) {
        return FAILED;
    }
    PyObject *iterator = PyObject_GetIter(items);
    Py_DECREF(items);
    if (iterator == NULL) {
        return FAILED;
    }
    int result = DONE;
    PyObject *item;
    while (result == DONE && (item = PyIter_Next(iterator)) != NULL) {
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
            result = attribute(b, tag, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1));
        }
        else {
            result = UNUSUAL; /* unpacking it is the Python encoder's to do */
        }
        Py_DECREF(item);
    }
    Py_DECREF(iterator);
    if (result == DONE && PyErr_Occurred()) {
        result = FAILED;
    }
    return result;
}

/* `getattr(owner, name)`, for the steps below: they stop at the first result that is not
 * DONE. */
#define GET(target, owner, name)                                                          \
    do {                                                                                  \
        (target) = PyObject_GetAttr((owner), (name));                                     \
        if ((target) == NULL) {                                                           \
            result = FAILED;                                                              \
            goto done;                                                                    \
        }                                                                                 \
    } while (0)

#define STEP(call)                                                                        \
    do {                                                                                  \
        result = (call);                                                                  \
        if (result != DONE) {                                                             \
            goto done;                                                                    \
        }                                                                                 \
    } while (0)

/* The encoded field of `member` in a ((member, field), ...) table, by identity. */
static int
put_member(Buf *b, PyObject *table, PyObject *member)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(table); i++) {
        PyObject *pair = PyTuple_GET_ITEM(table, i);
        if (PyTuple_GET_ITEM(pair, 0) == member) {
            PyObject *field = PyTuple_GET_ITEM(pair, 1);
            return put_bytes(b, PyBytes_AS_STRING(field), PyBytes_GET_SIZE(field));
        }
    }
    return UNUSUAL;
}

/* A SpanContext's field: `index` in its tuple, or the property `name`. */
static PyObject *
context_field(PyObject *context, Py_ssize_t index, PyObject *name)
{
    if (plain_context != NULL && (PyObject *)Py_TYPE(context) == plain_context &&
        PyTuple_GET_SIZE(context) > index) {
        PyObject *field = PyTuple_GET_ITEM(context, index);
        Py_INCREF(field);
        return field;
    }
    return PyObject_GetAttr(context, name);
}

#define GET_CONTEXT(target, context, index, name)                                         \
    do {                                                                                  \
        (target) = context_field((context), (index), (name));                             \
        if ((target) == NULL) {                                                           \
            result = FAILED;                                                              \
            goto done;                                                                    \
        }                                                                                 \
    } while (0)

static int
event_field(Buf *b, PyObject *item)
{
    int result;
    Py_ssize_t mark;
    PyObject *timestamp = NULL, *name = NULL, *mapping = NULL, *dropped = NULL;
    STEP(open_field(b, 0x5a, &mark));
    GET(timestamp, item, s_timestamp);
    STEP(put_time(b, 0x09, timestamp));
    GET(name, item, s_name);
    STEP(put_optional_str(b, 0x12, name));
    GET(mapping, item, s_attributes);
    STEP(attributes(b, 3, mapping));
    GET(dropped, item, s_dropped_attributes);
    STEP(put_count(b, 0x20, dropped));
    result = close_field(b, mark);
done:
    Py_XDECREF(timestamp);
    Py_XDECREF(name);
    Py_XDECREF(mapping);
    Py_XDECREF(dropped);
    return result;
}

/* A link: no trace_state, as the SDK's encoder writes none. */
static int
link_field(Buf *b, PyObject *item)
{
    int result, remote = 0;
    Py_ssize_t mark;
    PyObject *context = NULL, *trace_id = NULL, *span_id = NULL, *mapping = NULL,
             *dropped = NULL, *is_remote = NULL;
    STEP(open_field(b, 0x6a, &mark));
    GET(context, item, s_context);
    if (context == Py_None) {
        result = UNUSUAL;
        goto done;
    }
    GET_CONTEXT(trace_id, context, 0, s_trace_id);
    STEP(put_id(b, 0x0a, trace_id, 16));
    GET_CONTEXT(span_id, context, 1, s_span_id);
    STEP(put_id(b, 0x12, span_id, 8));
    GET(mapping, item, s_attributes);
    STEP(attributes(b, 4, mapping));
    GET(dropped, item, s_dropped_attributes);
    STEP(put_count(b, 0x28, dropped));
    GET_CONTEXT(is_remote, context, 2, s_is_remote);
    STEP(flag(is_remote, &remote));
    STEP(reserve(b, 5));
    b->data[b->len++] = 0x35;
    put_raw_le(b, remote ? 0x300 : 0x100, 4);
    result = close_field(b, mark);
done:
    Py_XDECREF(context);
    Py_XDECREF(trace_id);
    Py_XDECREF(span_id);
    Py_XDECREF(mapping);
    Py_XDECREF(dropped);
    Py_XDECREF(is_remote);
    return result;
}

/* Each item of a tuple or list of events or links, read as `for item in sequence` does
 * (a list's length is checked at each step: the SDK's properties run in between). */
static int
each(Buf *b, PyObject *sequence, int (*write)(Buf *, PyObject *))
{
    if (!PyTuple_CheckExact(sequence) && !PyList_CheckExact(sequence)) {
        return UNUSUAL;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(sequence, i);
        Py_INCREF(item);
        int result = write(b, item);
        Py_DECREF(item);
        if (result != DONE) {
            return result;
        }
    }
    return DONE;
}

/* A span's events or links and their dropped count: from the span's list or tuple (as
 * the property copies it to a tuple) with none dropped, or from its properties. */
static int
put_sequence(Buf *b, PyObject *span, int plain, PyObject *field, PyObject *property,
             PyObject *dropped_property, unsigned char dropped_tag,
             int (*write)(Buf *, PyObject *))
{
    PyObject *items = plain ? PyObject_GetAttr(span, field) : NULL;
    if (plain && items == NULL) {
        return FAILED;
    }
    if (plain && (PyTuple_CheckExact(items) || PyList_CheckExact(items))) {
        int result = DONE;
        if (PySequence_Fast_GET_SIZE(items)) {
            PyObject *copy = PySequence_Tuple(items);
            result = copy == NULL ? FAILED : each(b, copy, write);
            Py_XDECREF(copy);
        }
        Py_DECREF(items);
        return result; /* none dropped: only the SDK's bounded lists count them */
    }
    Py_XDECREF(items);
    items = PyObject_GetAttr(span, property);
    if (items == NULL) {
        return FAILED;
    }
    int result = each(b, items, write);
    Py_DECREF(items);
    if (result != DONE) {
        return result;
    }
    PyObject *dropped = PyObject_GetAttr(span, dropped_property);
    if (dropped == NULL) {
        return FAILED;
    }
    result = put_count(b, dropped_tag, dropped);
    Py_DECREF(dropped);
    return result;
}

/* A Span message's content, in the order the Python encoder reads the span. */
static int
span_content(Buf *b, PyObject *span)
{
    int result, stated, plain_mapping, plain_status_type, remote = 0, plain = 0;
    Py_ssize_t status_mark;
    PyObject *context = NULL, *parent = NULL, *trace_id = NULL, *span_id = NULL,
             *trace_state = NULL, *text = NULL, *parent_id = NULL, *name = NULL, *kind = NULL,
             *start = NULL, *end = NULL, *mapping = NULL, *dropped_attributes = NULL,
             *status = NULL, *code = NULL, *description = NULL, *is_remote = NULL;
    if (plain_spans != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(plain_spans); i++) {
            plain |= (PyObject *)Py_TYPE(span) == PyTuple_GET_ITEM(plain_spans, i);
        }
    }
    GET(context, span, plain ? p_context : s_context);
    if (context == Py_None) {
        result = UNUSUAL;
        goto done;
    }
    GET(parent, span, plain ? p_parent : s_parent);
    GET_CONTEXT(trace_id, context, 0, s_trace_id);
    STEP(put_id(b, 0x0a, trace_id, 16));
    GET_CONTEXT(span_id, context, 1, s_span_id);
    STEP(put_id(b, 0x12, span_id, 8));
    GET_CONTEXT(trace_state, context, 4, s_trace_state);
    stated = PyObject_IsTrue(trace_state);
    if (stated < 0) {
        result = FAILED;
        goto done;
    }
    if (stated) {
        text = PyObject_CallOneArg(trace_state_text, context);
        if (text == NULL) {
            result = FAILED;
            goto done;
        }
        STEP(put_optional_str(b, 0x1a, text));
    }
    if (parent != Py_None) {
        GET_CONTEXT(parent_id, parent, 1, s_span_id);
        STEP(put_id(b, 0x22, parent_id, 8));
    }
    GET(name, span, plain ? p_name : s_name);
    STEP(put_optional_str(b, 0x2a, name));
    GET(kind, span, plain ? p_kind : s_kind);
    STEP(put_member(b, kinds, kind));
    GET(start, span, plain ? p_start_time : s_start_time);
    STEP(put_time(b, 0x39, start));
    GET(end, span, plain ? p_end_time : s_end_time);
    STEP(put_time(b, 0x41, end));
    /* The property: a mappingproxy of the field (or of {} for None). A dict: none
     * dropped (only the SDK's BoundedAttributes count them). */
    if (plain) {
        GET(mapping, span, p_attributes);
    }
    plain_mapping = plain && (mapping == Py_None || PyDict_CheckExact(mapping));
    if (!plain_mapping) {
        Py_CLEAR(mapping);
        GET(mapping, span, s_attributes);
    }
    STEP(attributes(b, 9, mapping));
    if (!plain_mapping) {
        GET(dropped_attributes, span, s_dropped_attributes);
        STEP(put_count(b, 0x50, dropped_attributes));
    }
    STEP(put_sequence(b, span, plain, p_events, s_events, s_dropped_events, 0x60, event_field));
    STEP(put_sequence(b, span, plain, p_links, s_links, s_dropped_links, 0x70, link_field));
    GET(status, span, plain ? p_status : s_status);
    plain_status_type = plain_status != NULL && (PyObject *)Py_TYPE(status) == plain_status;
    GET(code, status, plain_status_type ? p_status_code : s_status_code);
    GET(description, status, plain_status_type ? p_description : s_description);
    STEP(open_field(b, 0x7a, &status_mark));
    STEP(put_optional_str(b, 0x12, description));
    STEP(put_member(b, statuses, code));
    STEP(close_field(b, status_mark));
    if (parent != Py_None) {
        GET_CONTEXT(is_remote, parent, 2, s_is_remote);
        STEP(flag(is_remote, &remote));
    }
    /* Span.flags: the context has an is_remote bit (0x100), and it is set (0x200). */
    STEP(reserve(b, 6));
    b->data[b->len++] = (char)0x85;
    b->data[b->len++] = 0x01;
    put_raw_le(b, remote ? 0x300 : 0x100, 4);
    result = DONE;
done:
    Py_XDECREF(context);
    Py_XDECREF(parent);
    Py_XDECREF(trace_id);
    Py_XDECREF(span_id);
    Py_XDECREF(trace_state);
    Py_XDECREF(text);
    Py_XDECREF(parent_id);
    Py_XDECREF(name);
    Py_XDECREF(kind);
    Py_XDECREF(start);
    Py_XDECREF(end);
    Py_XDECREF(mapping);
    Py_XDECREF(dropped_attributes);
    Py_XDECREF(status);
    Py_XDECREF(code);
    Py_XDECREF(description);
    Py_XDECREF(is_remote);
    return result;
}

static int
configured(void)
{
    if (span_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "sidecar.telemetry._otlp is not configured");
        return 0;
    }
    return 1;
}

static PyObject *
encode_span(PyObject *module, PyObject *span)
{
    if (!configured()) {
        return NULL;
    }
    Buf b;
    buf_init(&b);
    PyObject *encoded = NULL;
    /* The span is written after room for the field's tag and length, which go right
     * before it once its length is known: no moving it. */
    b.len = 11;
    int result = span_content(&b, span);
    if (result == DONE) {
        Py_ssize_t size = b.len - 11;
        Py_ssize_t start = 11 - 1 - varint_width((uint64_t)size);
        b.len = start;
        b.data[b.len++] = 0x12; /* ScopeSpans.spans */
        put_raw_varint(&b, (uint64_t)size);
        encoded = PyBytes_FromStringAndSize(b.data + start, 11 - start + size);
    }
    else if (result == UNUSUAL) {
        encoded = PyObject_CallOneArg(span_fallback, span);
    }
    buf_release(&b);
    return encoded;
}

static PyObject *
encode_attributes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "attributes() takes a field number and a mapping");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    int result = UNUSUAL;
    Buf b;
    buf_init(&b);
    if (PyLong_CheckExact(args[0])) {
        long number = PyLong_AsLong(args[0]);
        if (number >= 0 && number < (1L << 28)) {
            result = attributes(&b, (uint64_t)number, args[1]);
        }
        else if (number == -1 && PyErr_Occurred()) {
            result = unusual();
        }
    }
    PyObject *encoded = NULL;
    if (result == DONE) {
        encoded = PyBytes_FromStringAndSize(b.data, b.len);
    }
    else if (result == UNUSUAL) {
        encoded = PyObject_Vectorcall(attributes_fallback, args, 2, NULL);
    }
    buf_release(&b);
    return encoded;
}

/* A ((member, bytes), ...) table, checked once so that lookups need no checks. */
static int
valid_table(PyObject *table)
{
    if (!PyTuple_CheckExact(table)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(table); i++) {
        PyObject *pair = PyTuple_GET_ITEM(table, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            return 0;
        }
    }
    return 1;
}

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *layout = nargs == 6 ? args[5] : NULL;
    int layout_ok =
        layout == Py_None ||
        (layout != NULL && PyTuple_CheckExact(layout) && PyTuple_GET_SIZE(layout) == 3 &&
         PyTuple_CheckExact(PyTuple_GET_ITEM(layout, 0)) &&
         PyType_Check(PyTuple_GET_ITEM(layout, 1)) && PyType_Check(PyTuple_GET_ITEM(layout, 2)));
    if (!layout_ok || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1]) ||
        !PyCallable_Check(args[2]) || !valid_table(args[3]) || !valid_table(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "configure() takes the span and attributes encoders, the trace "
                        "state's text, the kinds' and status codes' fields, and the layout");
        return NULL;
    }
    PyObject *spans = NULL, *context = NULL, *status = NULL;
    if (layout != Py_None) {
        spans = PyTuple_GET_ITEM(layout, 0);
        context = PyTuple_GET_ITEM(layout, 1);
        status = PyTuple_GET_ITEM(layout, 2);
    }
    Py_INCREF(args[0]);
    Py_XSETREF(span_fallback, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(attributes_fallback, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(trace_state_text, args[2]);
    Py_INCREF(args[3]);
    Py_XSETREF(kinds, args[3]);
    Py_INCREF(args[4]);
    Py_XSETREF(statuses, args[4]);
    Py_XINCREF(spans);
    Py_XSETREF(plain_spans, spans);
    Py_XINCREF(context);
    Py_XSETREF(plain_context, context);
    Py_XINCREF(status);
    Py_XSETREF(plain_status, status);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(span, attributes, trace_state, kinds, statuses, layout): see protobuf.py"},
    {"encode_span", encode_span, METH_O,
     "encode_span(span) -> bytes: the span as a ScopeSpans `spans` field"},
    {"attributes", (PyCFunction)(void (*)(void))encode_attributes, METH_FASTCALL,
     "attributes(number, mapping) -> bytes: a KeyValue field `number` per item"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlp",
    "The OTLP span encoder in C (see protobuf.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__otlp(void)
{
    struct {
        PyObject **target;
        const char *text;
    } names[] = {
        {&s_context, "context"},
        {&s_parent, "parent"},
        {&s_trace_id, "trace_id"},
        {&s_span_id, "span_id"},
        {&s_trace_state, "trace_state"},
        {&s_is_remote, "is_remote"},
        {&s_name, "name"},
        {&s_kind, "kind"},
        {&s_start_time, "start_time"},
        {&s_end_time, "end_time"},
        {&s_attributes, "attributes"},
        {&s_dropped_attributes, "dropped_attributes"},
        {&s_events, "events"},
        {&s_dropped_events, "dropped_events"},
        {&s_links, "links"},
        {&s_dropped_links, "dropped_links"},
        {&s_status, "status"},
        {&s_status_code, "status_code"},
        {&s_description, "description"},
        {&s_timestamp, "timestamp"},
        {&s_items, "items"},
        {&p_context, "_context"},
        {&p_parent, "_parent"},
        {&p_name, "_name"},
        {&p_kind, "_kind"},
        {&p_start_time, "_start_time"},
        {&p_end_time, "_end_time"},
        {&p_attributes, "_attributes"},
        {&p_events, "_events"},
        {&p_links, "_links"},
        {&p_status, "_status"},
        {&p_status_code, "_status_code"},
        {&p_description, "_description"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].target == NULL) {
            *names[i].target = PyUnicode_InternFromString(names[i].text);
            if (*names[i].target == NULL) {
                return NULL;
            }
        }
    }
    if (sixty_four == NULL) {
        sixty_four = PyLong_FromLong(64);
        if (sixty_four == NULL) {
            return NULL;
        }
    }
    if (uint64_max == NULL) {
        uint64_max = PyLong_FromUnsignedLongLong(UINT64_MAX);
        if (uint64_max == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
