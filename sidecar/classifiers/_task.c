/* How the `task` classifier reads a prompt, in one call: its window, the lowered instruction
 * lines, their words' tags and language letters, the class letters of the window, and what
 * the rules read of them (code, formulas, question marks, digit runs, listed lines, given
 * material, steps, the language when function words alone tell it).
 *
 * task.py does the same with slices, `str.lower`, `bytes.translate`, `bytes.split` and a
 * dict lookup per word, each a copy of the text and a Python call; `_python_scan` and
 * `_python_items` there are the reference this must equal exactly. The word table lives in
 * a capsule made once by `reader()`: looking a word up in it needs no bytes object.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define CAPSULE_NAME "sidecar.classifiers._task.reader"
#define FNV_OFFSET 1469598103934665603ULL /* FNV-1a: a cheap hash of short words */
#define FNV_PRIME 1099511628211ULL

/* Eight bytes a slot, the arena under 64 KB: the table stays in the cache of a core that
 * runs other work between two prompts. */
typedef struct {
    uint16_t offset; /* of the word in the arena */
    uint8_t length;  /* 0: an empty slot */
    uint8_t check;   /* the hash's top byte: most other words differ in it */
    char tag, lang;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    char *arena;
    unsigned char classes[256]; /* class letter of each byte, ' ' for none */
    unsigned char boundary[256]; /* 1: punctuation or a blank (ends a word) */
    Py_ssize_t head, tail, short_len, line_len;
    char break_tag, break_lang; /* of the word "\x01", a line break */
    PyObject *marks;  /* the code marks (a tuple of bytes) */
    PyObject *labels; /* the labels of given material (a tuple of bytes) */
    PyObject *names;  /* the language of each language letter from "A" (a tuple of str) */
} Reader;

static uint64_t
hash_word(const unsigned char *p, Py_ssize_t n)
{
    uint64_t h = FNV_OFFSET;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * FNV_PRIME;
    }
    return h;
}

/* The slot of the word p[0:n] whose hash_word() is `hash`, or NULL. */
static const Slot *
lookup(const Reader *r, uint64_t hash, const unsigned char *p, Py_ssize_t n)
{
    size_t i = (size_t)hash & r->mask;
    uint8_t check = (uint8_t)(hash >> 56);
    for (;;) {
        const Slot *s = &r->slots[i];
        if (s->length == 0) {
            return NULL;
        }
        if (s->check == check && (Py_ssize_t)s->length == n &&
            memcmp(r->arena + s->offset, p, (size_t)n) == 0) {
            return s;
        }
        i = (i + 1) & r->mask;
    }
}

static void
reader_free(PyObject *capsule)
{
    Reader *r = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (r == NULL) {
        PyErr_Clear();
        return;
    }
    Py_XDECREF(r->marks);
    Py_XDECREF(r->labels);
    Py_XDECREF(r->names);
    PyMem_Free(r->slots);
    PyMem_Free(r->arena);
    PyMem_Free(r);
}

/* A tuple of non-empty bytes (0) or of str (1). */
static int
tuple_of(PyObject *tuple, int strings)
{
    if (!PyTuple_Check(tuple)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (strings ? !PyUnicode_Check(item)
                    : !PyBytes_Check(item) || PyBytes_GET_SIZE(item) == 0) {
            return 0;
        }
    }
    return 1;
}

/* reader(words, classes, punctuation, head, tail, short, line, marks, labels, names)
 *     -> capsule
 *
 * words: bytes -> two bytes (tag letter, language letter); classes: a 256-byte table of
 * class letters (' ' for none); punctuation: the bytes that end a word besides blanks;
 * marks: the code marks (UTF-8), looked for in this order; labels: those of given
 * material; names: the language of each language letter, from "A".
 */
static PyObject *
reader(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "reader() takes words, classes, punctuation, head, "
                                         "tail, short, line, marks, labels and names");
        return NULL;
    }
    if (!tuple_of(args[7], 0) || !tuple_of(args[8], 0) || !tuple_of(args[9], 1)) {
        PyErr_SetString(PyExc_TypeError,
                        "marks and labels must be tuples of non-empty bytes, names of str");
        return NULL;
    }
    if (!PyDict_Check(args[0]) || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "reader() takes a dict and two bytes");
        return NULL;
    }
    if (PyBytes_GET_SIZE(args[1]) != 256) {
        PyErr_SetString(PyExc_ValueError, "classes must be a 256-byte table");
        return NULL;
    }
    Py_ssize_t sizes[4];
    for (int k = 0; k < 4; k++) {
        sizes[k] = PyLong_AsSsize_t(args[3 + k]);
        if (sizes[k] == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (sizes[k] < 0) {
            PyErr_SetString(PyExc_ValueError, "sizes must not be negative");
            return NULL;
        }
    }
    PyObject *words = args[0];
    Py_ssize_t count = PyDict_GET_SIZE(words), total = 0, pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(words, &pos, &key, &value)) {
        if (!PyBytes_Check(key) || !PyBytes_Check(value) || PyBytes_GET_SIZE(value) != 2 ||
            PyBytes_GET_SIZE(key) == 0 || PyBytes_GET_SIZE(key) > 0xFF ||
            (unsigned char)PyBytes_AS_STRING(value)[0] >= 128 ||
            (unsigned char)PyBytes_AS_STRING(value)[1] >= 128) {
            PyErr_SetString(PyExc_ValueError,
                            "words must map non-empty bytes to two ASCII bytes (tag, language)");
            return NULL;
        }
        total += PyBytes_GET_SIZE(key);
    }
    if (total > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "words must take less than 64 KB");
        return NULL;
    }
    size_t size = 16;
    while (size < (size_t)count * 2) {
        size *= 2;
    }
    Reader *r = PyMem_Calloc(1, sizeof(Reader));
    if (r == NULL) {
        return PyErr_NoMemory();
    }
    r->slots = PyMem_Calloc(size, sizeof(Slot));
    r->arena = PyMem_Malloc((size_t)total + 1);
    if (r->slots == NULL || r->arena == NULL) {
        PyMem_Free(r->slots);
        PyMem_Free(r->arena);
        PyMem_Free(r);
        return PyErr_NoMemory();
    }
    r->mask = size - 1;
    size_t used = 0;
    pos = 0;
    while (PyDict_Next(words, &pos, &key, &value)) {
        const unsigned char *word = (const unsigned char *)PyBytes_AS_STRING(key);
        Py_ssize_t n = PyBytes_GET_SIZE(key);
        uint64_t hash = hash_word(word, n);
        size_t i = (size_t)hash & r->mask;
        while (r->slots[i].length != 0) {
            i = (i + 1) & r->mask;
        }
        memcpy(r->arena + used, word, (size_t)n);
        r->slots[i].offset = (uint16_t)used;
        r->slots[i].length = (uint8_t)n;
        r->slots[i].check = (uint8_t)(hash >> 56);
        r->slots[i].tag = PyBytes_AS_STRING(value)[0];
        r->slots[i].lang = PyBytes_AS_STRING(value)[1];
        used += (size_t)n;
    }
    memcpy(r->classes, PyBytes_AS_STRING(args[1]), 256);
    /* scan() makes str of the class letters, and looks at digits and line breaks only
     * among the bytes of a class. */
    int valid = r->classes['\n'] != ' ';
    for (int ch = 0; ch < 256; ch++) {
        valid &= r->classes[ch] < 128 && (ch < '0' || ch > '9' || r->classes[ch] != ' ');
    }
    if (!valid) {
        PyMem_Free(r->slots);
        PyMem_Free(r->arena);
        PyMem_Free(r);
        PyErr_SetString(PyExc_ValueError, "classes must be ASCII letters, and give digits and "
                                          "line breaks a class");
        return NULL;
    }
    static const unsigned char line_break[1] = {1};
    const Slot *found = lookup(r, hash_word(line_break, 1), line_break, 1);
    r->break_tag = found ? found->tag : '.';
    r->break_lang = found ? found->lang : '.';
    const unsigned char *punct = (const unsigned char *)PyBytes_AS_STRING(args[2]);
    for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(args[2]); i++) {
        r->boundary[punct[i]] = 1;
    }
    /* The blanks of `bytes.split()`. */
    r->boundary[' '] = r->boundary['\t'] = r->boundary['\n'] = 1;
    r->boundary['\r'] = r->boundary['\x0b'] = r->boundary['\x0c'] = 1;
    r->head = sizes[0];
    r->tail = sizes[1];
    r->short_len = sizes[2];
    r->line_len = sizes[3];
    Py_INCREF(args[7]);
    r->marks = args[7];
    Py_INCREF(args[8]);
    r->labels = args[8];
    Py_INCREF(args[9]);
    r->names = args[9];
    PyObject *capsule = PyCapsule_New(r, CAPSULE_NAME, reader_free);
    if (capsule == NULL) {
        Py_DECREF(r->marks);
        Py_DECREF(r->labels);
        Py_DECREF(r->names);
        PyMem_Free(r->slots);
        PyMem_Free(r->arena);
        PyMem_Free(r);
    }
    return capsule;
}

/* --- str.find / str.rfind of a line break, with their index rules ----------------------- */

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t len;
} Chars;

static void
adjust(Py_ssize_t *start, Py_ssize_t *end, Py_ssize_t len)
{
    if (*end > len) {
        *end = len;
    }
    else if (*end < 0) {
        *end += len;
        if (*end < 0) {
            *end = 0;
        }
    }
    if (*start < 0) {
        *start += len;
        if (*start < 0) {
            *start = 0;
        }
    }
}

static Py_ssize_t
find_nl(const Chars *c, Py_ssize_t start, Py_ssize_t end)
{
    adjust(&start, &end, c->len);
    for (Py_ssize_t i = start; i < end; i++) {
        if (PyUnicode_READ(c->kind, c->data, i) == '\n') {
            return i;
        }
    }
    return -1;
}

static Py_ssize_t
rfind_nl(const Chars *c, Py_ssize_t start, Py_ssize_t end)
{
    adjust(&start, &end, c->len);
    for (Py_ssize_t i = end - 1; i >= start; i--) {
        if (PyUnicode_READ(c->kind, c->data, i) == '\n') {
            return i;
        }
    }
    return -1;
}

static Py_ssize_t
clamp(Py_ssize_t i, Py_ssize_t len)
{
    return i < 0 ? 0 : (i > len ? len : i);
}

/* task.py's `_first_line`: [*start, *stop) of the window. */
static void
first_line(const Chars *c, Py_ssize_t line, Py_ssize_t *stop)
{
    Py_ssize_t end = find_nl(c, 0, line);
    if (end < 0) {
        *stop = clamp(line, c->len);
    }
    else if (end < 20) {
        Py_ssize_t start = end + 1;
        while (start < c->len && PyUnicode_READ(c->kind, c->data, start) == '\n') {
            start++;
        }
        end = find_nl(c, start, start + line);
        *stop = clamp(end >= 0 ? end : start + line, c->len);
    }
    else {
        *stop = end;
    }
}

/* task.py's `_last_line`: [*from, *to) of the window. */
static void
last_line(const Chars *c, Py_ssize_t line, Py_ssize_t *from, Py_ssize_t *to)
{
    Py_ssize_t stop = c->len;
    if (stop > 0 && Py_UNICODE_ISSPACE(PyUnicode_READ(c->kind, c->data, stop - 1))) {
        while (stop > 0 && Py_UNICODE_ISSPACE(PyUnicode_READ(c->kind, c->data, stop - 1))) {
            stop--;
        }
    }
    Py_ssize_t start = rfind_nl(c, stop - line, stop);
    if (start < 0) {
        Py_ssize_t low = stop - line;
        *from = clamp(low < 0 ? 0 : low, c->len);
        *to = stop;
        return;
    }
    if (stop - start < 20) {
        Py_ssize_t before = rfind_nl(c, stop - line, start - 1);
        start = before >= 0 ? before : (stop - line < 0 ? 0 : stop - line);
    }
    /* A slice: a start past the stop is empty. */
    *from = clamp(start + 1, c->len);
    *to = stop < *from ? *from : stop;
}

/* --- the words of the instruction -------------------------------------------------------- */


/* task.py's `_zones` over tags[0:n]: [first_from, first_to) and [last_from, last_to) of
 * `body` with its "/" removed are rebuilt into out_first and out_last (at most n each). */
static void
zones(const char *tags, Py_ssize_t n, char *first, Py_ssize_t *first_len, char *last,
      Py_ssize_t *last_len)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi && tags[lo] == '/') {
        lo++;
    }
    while (hi > lo && tags[hi - 1] == '/') {
        hi--;
    }
    const char *body = tags + lo;
    Py_ssize_t len = hi - lo, end = -1;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (body[i] == '/') {
            end = i;
            break;
        }
    }
    if (end < 0) {
        if (len > 40) {
            memcpy(first, body, 24);
            memcpy(last, body + len - 24, 24);
            *first_len = *last_len = 24;
        }
        else {
            memcpy(first, body, (size_t)len);
            memcpy(last, body, (size_t)len);
            *first_len = *last_len = len;
        }
        return;
    }
    Py_ssize_t f = 0;
    if (end < 4) { /* a title: the next line too */
        Py_ssize_t stop = -1;
        for (Py_ssize_t i = end + 1; i < len; i++) {
            if (body[i] == '/') {
                stop = i;
                break;
            }
        }
        if (stop <= 0) {
            stop = len;
        }
        for (Py_ssize_t i = 0; i < stop; i++) {
            if (body[i] != '/') {
                first[f++] = body[i];
            }
        }
    }
    else {
        memcpy(first, body, (size_t)end);
        f = end;
    }
    Py_ssize_t start = len - 1;
    while (body[start] != '/') {
        start--;
    }
    Py_ssize_t l = len - start - 1;
    if (l < 4) { /* a cue: the end of the line before too */
        Py_ssize_t b = start;
        while (b > 0 && body[b - 1] == '/') {
            b--;
        }
        Py_ssize_t a = b;
        while (a > 0 && body[a - 1] != '/') {
            a--;
        }
        if (b - a > 24) {
            a = b - 24;
        }
        memcpy(last, body + a, (size_t)(b - a));
        memcpy(last + (b - a), body + start + 1, (size_t)l);
        l += b - a;
    }
    else {
        memcpy(last, body + start + 1, (size_t)l);
    }
    if (f > 40) {
        f = 24;
    }
    if (l > 40) {
        memmove(last, last + l - 24, 24);
        l = 24;
    }
    *first_len = f;
    *last_len = l;
}

/* A str of ASCII letters (the tags and classes). */
static PyObject *
ascii(const char *p, Py_ssize_t n)
{
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL) {
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
    }
    return s;
}

/* The UTF-8 of a str, lone surrogates passed through: a borrowed buffer for ASCII, else a
 * new bytes object in *owner. */
static const unsigned char *
utf8(PyObject *s, Py_ssize_t *len, PyObject **owner)
{
    *owner = NULL;
    if (PyUnicode_IS_ASCII(s)) {
        *len = PyUnicode_GET_LENGTH(s);
        return PyUnicode_1BYTE_DATA(s);
    }
    *owner = PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass");
    if (*owner == NULL) {
        return NULL;
    }
    *len = PyBytes_GET_SIZE(*owner);
    return (const unsigned char *)PyBytes_AS_STRING(*owner);
}

static int
ascii_range(int kind, const void *data, Py_ssize_t from, Py_ssize_t to)
{
    for (Py_ssize_t i = from; i < to; i++) {
        if (PyUnicode_READ(kind, data, i) >= 128) {
            return 0;
        }
    }
    return 1;
}

static void
lower_ascii(int kind, const void *data, Py_ssize_t from, Py_ssize_t to, Py_UCS1 *dst)
{
    for (Py_ssize_t i = from; i < to; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        *dst++ = (Py_UCS1)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
    }
}

static PyObject *lower_name; /* "lower", interned once */

/* The lowered concatenation of window[a0:a1], "\n" (when joined) and window[b0:b1]. */
static PyObject *
lowered_line(PyObject *window, Py_ssize_t a0, Py_ssize_t a1, int joined, Py_ssize_t b0,
             Py_ssize_t b1)
{
    int kind = PyUnicode_KIND(window);
    const void *data = PyUnicode_DATA(window);
    /* Lines of ASCII are lowered here (a window holds other letters more often than its
     * instruction lines do); any other letter needs Unicode's full case mapping. */
    if (PyUnicode_IS_ASCII(window) ||
        (ascii_range(kind, data, a0, a1) && (!joined || ascii_range(kind, data, b0, b1)))) {
        Py_ssize_t n = (a1 - a0) + (joined ? 1 + (b1 - b0) : 0);
        PyObject *line = PyUnicode_New(n, 127);
        if (line == NULL) {
            return NULL;
        }
        Py_UCS1 *dst = PyUnicode_1BYTE_DATA(line);
        lower_ascii(kind, data, a0, a1, dst);
        if (joined) {
            dst[a1 - a0] = '\n';
            lower_ascii(kind, data, b0, b1, dst + (a1 - a0) + 1);
        }
        return line;
    }
    PyObject *whole;
    if (joined) {
        PyObject *first = PyUnicode_Substring(window, a0, a1);
        if (first == NULL) {
            return NULL;
        }
        PyObject *last = PyUnicode_Substring(window, b0, b1);
        if (last == NULL) {
            Py_DECREF(first);
            return NULL;
        }
        PyObject *parts = PyTuple_Pack(2, first, last);
        Py_DECREF(first);
        Py_DECREF(last);
        if (parts == NULL) {
            return NULL;
        }
        PyObject *newline = PyUnicode_FromOrdinal('\n');
        if (newline == NULL) {
            Py_DECREF(parts);
            return NULL;
        }
        whole = PyUnicode_Join(newline, parts);
        Py_DECREF(newline);
        Py_DECREF(parts);
    }
    else {
        whole = PyUnicode_Substring(window, a0, a1);
    }
    if (whole == NULL) {
        return NULL;
    }
    /* Full Unicode case mapping (one letter may become two): str.lower itself. */
    PyObject *line = PyObject_CallMethodNoArgs(whole, lower_name);
    Py_DECREF(whole);
    return line;
}

/* Occurrences of needle[0:m] in p[0:n], not overlapping (as `str.count`), at most `most`. */
static Py_ssize_t
count_in(const unsigned char *p, Py_ssize_t n, const char *needle, Py_ssize_t m,
         Py_ssize_t most)
{
    Py_ssize_t found = 0, i = 0;
    while (found < most && i + m <= n) {
        const unsigned char *hit = memchr(p + i, (unsigned char)needle[0], (size_t)(n - m - i + 1));
        if (hit == NULL) {
            break;
        }
        i = hit - p;
        if (memcmp(hit, needle, (size_t)m) == 0) {
            found++;
            i += m;
        }
        else {
            i++;
        }
    }
    return found;
}

#define HAS(p, n, lit) (count_in((p), (n), (lit), (Py_ssize_t)sizeof(lit) - 1, 1) > 0)
#define COUNT(p, n, lit) count_in((p), (n), (lit), (Py_ssize_t)sizeof(lit) - 1, PY_SSIZE_T_MAX)

static Py_ssize_t
count_char(const char *p, Py_ssize_t n, char c)
{
    Py_ssize_t found = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        found += p[i] == c;
    }
    return found;
}

/* At least `needed` of the phrases (a tuple of bytes) occur in p[0:n] (`_has_marks`). */
static int
has_marks(PyObject *marks, const unsigned char *p, Py_ssize_t n, Py_ssize_t needed)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(marks); i++) {
        PyObject *mark = PyTuple_GET_ITEM(marks, i);
        if (count_in(p, n, PyBytes_AS_STRING(mark), PyBytes_GET_SIZE(mark), 1)) {
            if (--needed == 0) {
                return 1;
            }
        }
    }
    return 0;
}

static int
one_of(char c, const char *set)
{
    return c != 0 && strchr(set, c) != NULL;
}

/* task.py's `_GIVEN` matches somewhere in tags[0:n]: a pointer before a noun
 * (D[^DG/]{0,3}[GaV%]) or after it ([GaV][^/]?D). */
static int
given_tags(const char *tags, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (tags[i] == 'D') {
            for (Py_ssize_t k = 0; k <= 3 && i + 1 + k < n; k++) {
                if (k > 0 && one_of(tags[i + k], "DG/")) {
                    break;
                }
                if (one_of(tags[i + 1 + k], "GaV%")) {
                    return 1;
                }
            }
        }
        else if (one_of(tags[i], "GaV")) {
            if ((i + 1 < n && tags[i + 1] == 'D') ||
                (i + 2 < n && tags[i + 1] != '/' && tags[i + 2] == 'D')) {
                return 1;
            }
        }
    }
    return 0;
}

/* The window: the whole text when it is short, else its first HEAD and last TAIL
 * characters joined by a line break. */
static PyObject *
make_window(const Reader *r, PyObject *text, Py_ssize_t n)
{
    if (n <= r->short_len) {
        Py_INCREF(text);
        return text;
    }
    PyObject *head = PyUnicode_Substring(text, 0, r->head < n ? r->head : n);
    if (head == NULL) {
        return NULL;
    }
    PyObject *tail = PyUnicode_Substring(text, r->tail < n ? n - r->tail : 0, n);
    if (tail == NULL) {
        Py_DECREF(head);
        return NULL;
    }
    PyObject *parts = PyTuple_Pack(2, head, tail);
    Py_DECREF(head);
    Py_DECREF(tail);
    if (parts == NULL) {
        return NULL;
    }
    PyObject *newline = PyUnicode_FromOrdinal('\n');
    if (newline == NULL) {
        Py_DECREF(parts);
        return NULL;
    }
    PyObject *window = PyUnicode_Join(newline, parts);
    Py_DECREF(newline);
    Py_DECREF(parts);
    return window;
}

/* scan(reader, text) -> (window, line, tags, hits, classes, first, last, digit_runs,
 *                        bullets, numbered): see `_python_scan` in task.py. */
static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "scan() takes a reader and a text");
        return NULL;
    }
    PyObject *text = args[1];
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes a str");
        return NULL;
    }
    const Reader *r = PyCapsule_GetPointer(args[0], CAPSULE_NAME);
    if (r == NULL) {
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *result = NULL, *window = NULL, *line = NULL, *line_bytes = NULL;
    PyObject *raw_bytes = NULL;
    char *buffer = NULL;

    window = make_window(r, text, n);
    if (window == NULL) {
        goto done;
    }
    Chars w = {PyUnicode_KIND(window), PyUnicode_DATA(window), PyUnicode_GET_LENGTH(window)};
    if (n <= r->short_len) {
        line = lowered_line(window, 0, w.len, 0, 0, 0);
    }
    else {
        Py_ssize_t a1, b0, b1;
        first_line(&w, r->line_len, &a1);
        last_line(&w, r->line_len, &b0, &b1);
        line = lowered_line(window, 0, a1, 1, b0, b1);
    }
    if (line == NULL) {
        goto done;
    }

    /* The words: "\n" is the word "\x01" (a line break), punctuation and blanks end words. */
    Py_ssize_t size;
    const unsigned char *p = utf8(line, &size, &line_bytes);
    if (p == NULL) {
        goto done;
    }
    Py_ssize_t raw_size;
    const unsigned char *raw = utf8(window, &raw_size, &raw_bytes);
    if (raw == NULL) {
        goto done;
    }
    /* Room for: tags and langs (a word per byte at most, and one more per line break),
     * classes (a letter per byte at most), first and last zones (tags at most each). */
    Py_ssize_t words_max = size + 1;
    buffer = PyMem_Malloc((size_t)(words_max * 4 + raw_size + 1));
    if (buffer == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    char *tags = buffer, *langs = buffer + words_max;
    char *first = langs + words_max, *last = first + words_max;
    char *classes = last + words_max;
    Py_ssize_t count = 0, start = -1;
    uint64_t hash = FNV_OFFSET; /* of the word so far */
    for (Py_ssize_t i = 0; i <= size; i++) {
        unsigned char ch = i < size ? p[i] : ' '; /* a blank after the end ends a word */
        if (!r->boundary[ch]) {
            if (start < 0) {
                start = i;
                hash = FNV_OFFSET;
            }
            hash = (hash ^ ch) * FNV_PRIME;
            continue;
        }
        if (start >= 0) {
            const Slot *found = lookup(r, hash, p + start, i - start);
            tags[count] = found ? found->tag : '.';
            langs[count++] = found ? found->lang : '.';
            start = -1;
        }
        if (ch == '\n') {
            tags[count] = r->break_tag;
            langs[count++] = r->break_lang;
        }
    }
    Py_ssize_t hits = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (langs[i] != '.') {
            langs[hits++] = langs[i];
        }
    }
    Py_ssize_t first_len, last_len;
    zones(tags, count, first, &first_len, last, &last_len);

    /* The window's bytes: class letters, digit runs, numbered and bulleted lines. */
    Py_ssize_t n_classes = 0, digit_runs = 0, bullets = 0, numbered = 0;
    for (Py_ssize_t i = 0; i < raw_size; i++) {
        unsigned char ch = raw[i];
        unsigned char cls = r->classes[ch];
        if (cls == ' ') { /* most bytes: letters and blanks */
            continue;
        }
        classes[n_classes++] = (char)cls;
        if (ch >= '0' && ch <= '9') {
            digit_runs += i == 0 || raw[i - 1] < '0' || raw[i - 1] > '9';
            continue;
        }
        /* `_WINDOW_ITEM`: a match takes no line break after its own, so each line break
         * can be tried on its own. */
        if (ch == '\n' && i + 1 < raw_size) {
            unsigned char next = raw[i + 1];
            if (next >= '0' && next <= '9') {
                numbered++;
            }
            else if (next == '-' || next == '*' ||
                     (r->classes[next] == ' ' && i + 2 < raw_size &&
                      (raw[i + 2] == '-' || raw[i + 2] == '*'))) {
                bullets++;
            }
        }
    }

    /* Code and formulas (`_python_scan` says when each search runs). The window's UTF-8
     * holds a str's substring exactly where the str does. */
    Py_ssize_t code_punct = count_char(classes, n_classes, 'p');
    int stub = HAS(raw, raw_size, "def ") &&
               (HAS(raw, raw_size, "\"\"\"") || HAS(raw, raw_size, "'''"));
    int has_code = stub || (memchr(classes, 'b', (size_t)n_classes) != NULL &&
                            HAS(raw, raw_size, "```"));
    if (!has_code && (code_punct >= 2 || memchr(tags, '#', (size_t)count) != NULL ||
                      HAS(raw, raw_size, "\n    "))) {
        Py_ssize_t indented = COUNT(raw, raw_size, "\n    ") + COUNT(raw, raw_size, "\n\t");
        has_code = indented >= 4 && code_punct * 25 > raw_size;
        if (!has_code && (code_punct >= 3 || indented >= 2)) {
            has_code = has_marks(r->marks, raw, raw_size, code_punct >= 6 || indented >= 2 ? 2 : 3);
        }
    }
    int formula = memchr(classes, 'h', (size_t)n_classes) != NULL ||
                  (code_punct * 40 > raw_size &&
                   count_char(classes, n_classes, '0') * 10 > raw_size && !has_code);
    if (!formula && HAS(raw, raw_size, "(")) {
        formula = HAS(raw, raw_size, "f(x)") || (code_punct > 0 && HAS(raw, raw_size, "\\frac"));
    }
    if (!formula && memchr(classes, 'x', (size_t)n_classes) != NULL) {
        formula = HAS(raw, raw_size, "\xe2\x88\x9a") || HAS(raw, raw_size, "\xe2\x88\xab");
    }
    Py_ssize_t qmarks = count_char(classes, n_classes, 'q');
    if (memchr(classes, 'f', (size_t)n_classes) != NULL) {
        qmarks += COUNT(raw, raw_size, "\xef\xbc\x9f"); /* the fullwidth question mark */
    }
    Py_ssize_t constraints = count_char(tags, count, 'c');
    /* The instruction: all the tags of a short prompt, else the first and last zones. */
    const char *inst = tags;
    Py_ssize_t inst_len = count;
    if (count > 60) {
        /* The zones are side by side in the buffer: the last moves up to the first. */
        memmove(first + first_len, last, (size_t)last_len);
        inst = first;
        inst_len = first_len + last_len;
    }
    int code_named = memchr(inst, 'P', (size_t)inst_len) != NULL ||
                     memchr(inst, 'F', (size_t)inst_len) != NULL ||
                     memchr(inst, 'f', (size_t)inst_len) != NULL;
    /* Given material (`_Text.given`). */
    int given = given_tags(tags, count) ||
                (memchr(p, ':', (size_t)size) != NULL &&
                 (memchr(tags, 'q', (size_t)count) != NULL ||
                  memchr(tags, 'G', (size_t)count) != NULL ||
                  memchr(tags, 'V', (size_t)count) != NULL) &&
                 has_marks(r->labels, p, size, 1));
    /* The steps of the window (`_Text.steps`): options are not steps. */
    Py_ssize_t steps = count_char(tags, count, 't') + (qmarks > 1 ? qmarks - 1 : 0) +
                       numbered +
                       (memchr(tags, 'o', (size_t)count) || memchr(tags, 'q', (size_t)count)
                            ? 0
                            : bullets);
    /* The language when only function words tell it and they agree (`_language`); ""
     * leaves it to the rules there. */
    PyObject *language = NULL;
    int scripts = 0;
    for (Py_ssize_t i = 0; i < n_classes && !scripts; i++) {
        scripts = one_of(classes[i], "LGRHAIVJZK");
    }
    if (!scripts) {
        int agree = 1;
        for (Py_ssize_t i = 1; i < hits && agree; i++) {
            agree = langs[i] == langs[0];
        }
        Py_ssize_t index = hits ? (unsigned char)langs[0] - 'A' : -1;
        if (!hits) {
            language = PyUnicode_FromString("und");
        }
        else if (agree && index >= 0 && index < PyTuple_GET_SIZE(r->names)) {
            language = PyTuple_GET_ITEM(r->names, index);
            Py_INCREF(language);
        }
    }
    if (language == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        language = PyUnicode_FromString("");
        if (language == NULL) {
            goto done;
        }
    }
    result = PyTuple_New(20);
    if (result == NULL) {
        Py_DECREF(language);
        goto done;
    }
    PyTuple_SET_ITEM(result, 19, language);
    if (result == NULL) {
        goto done;
    }
    /* Each item is set as it is made: on an error the tuple frees those made so far. */
    PyObject *item;
    Py_INCREF(window);
    PyTuple_SET_ITEM(result, 0, window);
    Py_INCREF(line);
    PyTuple_SET_ITEM(result, 1, line);
    const char *strings[6] = {tags, NULL, classes, first, count > 60 ? first + first_len : last,
                              inst};
    Py_ssize_t lengths[6] = {count, hits, n_classes, first_len, last_len, inst_len};
    for (int k = 0; k < 6; k++) {
        item = k == 1 ? PyBytes_FromStringAndSize(langs, hits) : ascii(strings[k], lengths[k]);
        if (item == NULL) {
            goto fail;
        }
        PyTuple_SET_ITEM(result, 2 + k, item);
    }
    int flags[4] = {code_named, stub, has_code, formula};
    for (int k = 0; k < 4; k++) {
        item = flags[k] ? Py_True : Py_False;
        Py_INCREF(item);
        PyTuple_SET_ITEM(result, 8 + k, item);
    }
    Py_ssize_t numbers[7] = {qmarks, constraints, digit_runs, bullets, numbered, given, steps};
    for (int k = 0; k < 7; k++) {
        item = PyLong_FromSsize_t(numbers[k]);
        if (item == NULL) {
            goto fail;
        }
        PyTuple_SET_ITEM(result, 12 + k, item);
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    PyMem_Free(buffer);
    Py_XDECREF(raw_bytes);
    Py_XDECREF(line_bytes);
    Py_XDECREF(line);
    Py_XDECREF(window);
    return result;
}

static int
in_tab(Py_UCS4 ch)
{
    return ch == ' ' || ch == '\t';
}

/* items(text, end) -> (bullets, numbered): the matches of task.py's `_LIST_ITEM`,
 * r"\n[ \t]*(?:(\d)\d?[.)]|[-*•])[ \t]", in text[:end]; see `_python_items`. */
static PyObject *
items(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "items() takes a str and an end");
        return NULL;
    }
    Py_ssize_t end = PyLong_AsSsize_t(args[1]);
    if (end == -1 && PyErr_Occurred()) {
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(args[0]) < 0) {
        return NULL;
    }
#endif
    int kind = PyUnicode_KIND(args[0]);
    const void *data = PyUnicode_DATA(args[0]);
    Py_ssize_t len = clamp(end, PyUnicode_GET_LENGTH(args[0]));
    Py_ssize_t bullets = 0, numbered = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (kind == PyUnicode_1BYTE_KIND) { /* most prompts: memchr skips to the line break */
            const Py_UCS1 *at = memchr((const Py_UCS1 *)data + i, '\n', (size_t)(len - i));
            if (at == NULL) {
                break;
            }
            i = at - (const Py_UCS1 *)data;
        }
        else if (PyUnicode_READ(kind, data, i) != '\n') {
            continue;
        }
        Py_ssize_t j = i + 1;
        while (j < len && in_tab(PyUnicode_READ(kind, data, j))) {
            j++;
        }
        if (j >= len) {
            break;
        }
        Py_UCS4 ch = PyUnicode_READ(kind, data, j);
        if (Py_UNICODE_ISDECIMAL(ch)) {
            Py_ssize_t k = j + 1;
            if (k < len && Py_UNICODE_ISDECIMAL(PyUnicode_READ(kind, data, k))) {
                k++;
            }
            if (k + 1 < len) {
                Py_UCS4 mark = PyUnicode_READ(kind, data, k);
                if ((mark == '.' || mark == ')') && in_tab(PyUnicode_READ(kind, data, k + 1))) {
                    numbered++;
                    i = k + 1;
                }
            }
        }
        else if ((ch == '-' || ch == '*' || ch == 0x2022) && j + 1 < len &&
                 in_tab(PyUnicode_READ(kind, data, j + 1))) {
            bullets++;
            i = j + 1;
        }
    }
    return Py_BuildValue("(nn)", bullets, numbered);
}

static PyMethodDef methods[] = {
    {"reader", (PyCFunction)(void (*)(void))reader, METH_FASTCALL,
     "reader(words, classes, punctuation, head, tail, short, line) -> the table scan() reads"},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(reader, text) -> what the task classifier reads: see sidecar/classifiers/task.py"},
    {"items", (PyCFunction)(void (*)(void))items, METH_FASTCALL,
     "items(text, end) -> (bullets, numbered) of text[:end]: see sidecar/classifiers/task.py"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_task",
    "How the task classifier reads a prompt, in C (see task.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__task(void)
{
    if (lower_name == NULL) {
        lower_name = PyUnicode_InternFromString("lower");
        if (lower_name == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
