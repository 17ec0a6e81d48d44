/* The fixed part of the `sensitive` classifier's scan, in one call.
 *
 * sensitive.py reads a text through views built with `bytes.translate` and finds the
 * places worth a closer look with `re` passes that stop at every digit, colon and `=`;
 * most of those stops fail. This builds the two views and decides, for each such place,
 * whether the pass's pattern matches there, with plain loops: Python then looks only at
 * the matches. sensitive.py's `_python_scan` is the reference this must equal, item for
 * item; the tests compare the two on the same inputs.
 *
 * Each test below reads one pattern of sensitive.py; its possessive and optional parts
 * either cannot backtrack into another match or fail whichever way they are taken, which
 * is why a single left-to-right (or, for the reversed patterns, right-to-left) reading
 * decides the match. Word lists come from sensitive.py (`setup`), spelt as its patterns
 * spell them, so that the two cannot drift apart.
 *
 * Checks of single candidates are here too, each equal to its Python twin: `classes`
 * (the class counts of a long token or a value), `street_context` (the words before a
 * name and a house number), `number` (what a run of digits is: its shape, checksums
 * and the label before it) and `building_number` (a street type, a name and a house
 * number, or a street prefix after a building number).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The kinds of label before a number, in the order of `_LABELS` in sensitive.py: the
 * order its pattern tries them in. */
enum { NID, DL, ACCT, CARD, OTHER, PHONE, KINDS };
static const char *const kind_names[KINDS] = {"nid", "dl", "acct", "card", "other", "phone"};

/* The word lists of the patterns, as sensitive.py spells them (set by `setup`). */
enum {
    SECRET,       /* credential words before an operator, reversed */
    SUFFIX,       /* key suffixes (`_value`), reversed */
    MEDICAL,      /* medical record fields, reversed */
    PATIENT,      /* patient labels, reversed */
    ADDRESS,      /* address labels, reversed */
    PREFIX,       /* lower-case street prefixes after a building number */
    STREET,       /* plain street types after a lower-case word */
    LOWER_STREET, /* lower-case street words before a house number, reversed */
    CONTEXT_PREFIX,  /* street prefixes as words of the text ("rua", "ul.") */
    CONTEXT_ADDRESS, /* words that announce an address */
    CONTEXT_SEND,    /* words of sending and delivering */
    CONTEXT_PAIRS,   /* two-word address phrases ("lives at"), a space between */
    FILLER,          /* words between a label and its number ("is", "my"), reversed */
    TAIL,            /* "number", "no", "id" ... after a label, reversed */
    NUMBER_TAIL,     /* the tails that make a number with no other label a phone */
    LABEL,           /* the words of each kind of label (`KINDS` lists), reversed */
    STATES = LABEL + KINDS, /* US state and Canadian province codes */
    STREET_TYPE,    /* street types after a building number and its words */
    AMBIGUOUS,      /* street types that are everyday words too ("walk", "place") */
    MORE_SUFFIX,    /* more English street types, all everyday words */
    NOT_STREET,     /* capitalised words that take a number without being a street */
    NAME_PREFIX,    /* street prefixes before a name ("via", "rue", "улица") */
    ARTICLE,        /* articles after a street prefix ("rue de", "rua do") */
    LISTS
};
static PyObject *lists[LISTS]; /* keeps the words' bytes alive */
/* The words of each list grouped by their first byte (the first one read): the words that
 * start with byte `x` are words[list][first[list][x]] up to words[list][first[list][x + 1]]. */
typedef struct {
    const unsigned char *text;
    Py_ssize_t len;
} word_t;
static word_t *words[LISTS];
static Py_ssize_t first[LISTS][257];
static Py_ssize_t longest[LISTS]; /* the length of each list's longest word */

static int
is_lower(unsigned char ch)
{
    return ch >= 'a' && ch <= 'z';
}

static int
not_lower(const unsigned char *v, Py_ssize_t at)
{
    return at < 0 || !is_lower(v[at]);
}

/* A word of `list` read backwards from `end` (`v[end - 1]` equals the word's first byte),
 * followed in that reading by a byte that is no lower-case letter when `bounded`, and for
 * which `then`, when given, holds at the offset where the word begins (its last byte
 * read): the rest of the pattern. */
static int
word_before(int list, const unsigned char *v, Py_ssize_t end, int bounded,
            int (*then)(const unsigned char *, Py_ssize_t))
{
    if (end < 1) {
        return 0;
    }
    unsigned char byte = v[end - 1];
    for (Py_ssize_t i = first[list][byte]; i < first[list][byte + 1]; i++) {
        const unsigned char *w = words[list][i].text;
        Py_ssize_t len = words[list][i].len;
        if (len > end) {
            continue;
        }
        Py_ssize_t k = 1;
        while (k < len && v[end - 1 - k] == w[k]) {
            k++;
        }
        if (k < len) {
            continue;
        }
        if (bounded && !not_lower(v, end - len - 1)) {
            continue;
        }
        if (then == NULL || then(v, end - len)) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * Labels before `:` and `=` (the lower-case view, read backwards from the operator). */

static int
secret_word_ends(const unsigned char *z, Py_ssize_t end)
{
    return word_before(SECRET, z, end, 0, NULL);
}

/* `[_.\-]?` then a credential word, before a key suffix. */
static int
suffix_after_word(const unsigned char *z, Py_ssize_t end)
{
    if (end > 0 && (z[end - 1] == '_' || z[end - 1] == '.' || z[end - 1] == '-') &&
        secret_word_ends(z, end - 1)) {
        return 1;
    }
    return secret_word_ends(z, end);
}

/* The key branch: `(?:SUFFIX[_.\-]?WORD|WORD)` (what follows it always matches). */
static int
key_before(const unsigned char *z, Py_ssize_t k)
{
    return word_before(SUFFIX, z, k, 0, suffix_after_word) || secret_word_ends(z, k);
}

static int
name_byte(unsigned char ch)
{
    return is_lower(ch) || ch >= 0x80 || ch == '\'' || ch == '-';
}

/* `[a-z\x80-\xff'-]{2,20}+ ` read backwards from `k`: where it ends, or -1. */
static Py_ssize_t
name_word(const unsigned char *z, Py_ssize_t k)
{
    Py_ssize_t len = 0;
    while (len <= 20 && k - len > 0 && name_byte(z[k - len - 1])) {
        len++;
    }
    if (len < 2 || len > 20 || k - len < 1 || z[k - len - 1] != ' ') {
        return -1;
    }
    return k - len - 1;
}

static int
medical_field_ends(const unsigned char *z, Py_ssize_t end)
{
    return word_before(MEDICAL, z, end, 1, NULL);
}

/* ` for` before `end`, then a medical field. */
static int
for_field(const unsigned char *z, Py_ssize_t end)
{
    return end >= 4 && memcmp(z + end - 4, " for", 4) == 0 && medical_field_ends(z, end - 4);
}

/* A field, or a field "for Jane Doe". */
static int
medical_before(const unsigned char *z, Py_ssize_t k)
{
    Py_ssize_t k1 = name_word(z, k);
    if (k1 >= 0) {
        Py_ssize_t k2 = name_word(z, k1);
        if ((k2 >= 0 && for_field(z, k2)) || for_field(z, k1)) {
            return 1;
        }
    }
    return medical_field_ends(z, k);
}

static int
space_byte(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r'); /* `\s` of a bytes pattern */
}

/* `curl -u user:password`: `[^\s:'"@/]{1,64}+['"]?[ \t]+` then `-u` or `--user`. */
static int
userpass_before(const unsigned char *z, Py_ssize_t k)
{
    Py_ssize_t len = 0;
    while (len <= 64 && k - len > 0) {
        unsigned char ch = z[k - len - 1];
        if (space_byte(ch) || ch == ':' || ch == '\'' || ch == '"' || ch == '@' || ch == '/') {
            break;
        }
        len++;
    }
    if (len < 1 || len > 64) {
        return 0;
    }
    k -= len;
    if (k > 0 && (z[k - 1] == '\'' || z[k - 1] == '"')) {
        k--;
    }
    Py_ssize_t blanks = 0;
    while (k > 0 && (z[k - 1] == ' ' || z[k - 1] == '\t')) {
        k--;
        blanks++;
    }
    if (blanks == 0) {
        return 0;
    }
    return (k >= 2 && memcmp(z + k - 2, "-u", 2) == 0) ||
           (k >= 6 && memcmp(z + k - 6, "--user", 6) == 0);
}

static int
hex_byte(unsigned char ch)
{
    return ch == '0' || (ch >= 'a' && ch <= 'f');
}

/* IPv6 from its last colon: `[0a-f]{1,4}:(?:[0a-f]{0,4}:){1,6}[0a-f]{0,4}(?![0a-z:])`.
 * Hex digits and colons are all in the lookahead's set, so a match takes the whole run of
 * them: its groups, split at the colons, decide. */
static int
ipv6_before(const unsigned char *z, Py_ssize_t k)
{
    Py_ssize_t group = 0, colons = 0;
    while (k > 0 && (hex_byte(z[k - 1]) || z[k - 1] == ':')) {
        if (z[k - 1] == ':') {
            if (colons == 0 && group == 0) {
                return 0; /* the first group needs a digit */
            }
            colons++;
            group = 0;
        }
        else if (++group > 4) {
            return 0;
        }
        k--;
    }
    if (colons == 0 && group == 0) {
        return 0;
    }
    return colons >= 2 && colons <= 7 && not_lower(z, k - 1);
}

/* A run of bytes other than `stop` and newline, 1 to `most` of them, read backwards from
 * `k` and then `stop`: the offset of `stop`, or -1. */
static Py_ssize_t
run_then(const unsigned char *z, Py_ssize_t k, Py_ssize_t most, unsigned char stop)
{
    Py_ssize_t len = 0;
    while (len <= most && k - len > 0 && z[k - len - 1] != stop && z[k - len - 1] != '\n') {
        len++;
    }
    if (len < 1 || len > most || k - len < 1 || z[k - len - 1] != stop) {
        return -1;
    }
    return k - len - 1;
}

/* `[10:05 AM] Alice Brown` before `k`: two names, `]`, up to 24 bytes, `[`. */
static int
speaker_names(const unsigned char *z, Py_ssize_t k)
{
    Py_ssize_t k1 = name_word(z, k);
    Py_ssize_t k2 = k1 < 0 ? -1 : name_word(z, k1);
    if (k2 < 1 || z[k2 - 1] != ']') {
        return 0;
    }
    return run_then(z, k2 - 1, 24, '[') >= 0;
}

/* The speaker branch: names, or names and a role in parentheses. */
static int
speaker_before(const unsigned char *z, Py_ssize_t k)
{
    if (k > 0 && z[k - 1] == ')') {
        Py_ssize_t open = run_then(z, k - 1, 40, '(');
        if (open >= 1 && z[open - 1] == ' ' && speaker_names(z, open - 1)) {
            return 1;
        }
    }
    return speaker_names(z, k);
}

/* Does the pattern of the `:` or `=` pass match at the operator `op`? */
static int
operator_matches(const unsigned char *z, Py_ssize_t op, int colon, int speakers)
{
    Py_ssize_t k = op;
    /* `[=:>]?+[ \t]*+["'`\]]?+[ \t]*+`, all possessive. */
    if (k > 0 && (z[k - 1] == '=' || z[k - 1] == ':' || z[k - 1] == '>')) {
        k--;
    }
    while (k > 0 && (z[k - 1] == ' ' || z[k - 1] == '\t')) {
        k--;
    }
    if (k > 0 && (z[k - 1] == '"' || z[k - 1] == '\'' || z[k - 1] == '`' || z[k - 1] == ']')) {
        k--;
    }
    while (k > 0 && (z[k - 1] == ' ' || z[k - 1] == '\t')) {
        k--;
    }
    if (key_before(z, k)) {
        return 1;
    }
    if (!colon) {
        return 0;
    }
    return medical_before(z, k) || word_before(PATIENT, z, k, 1, NULL) ||
           word_before(ADDRESS, z, k, 1, NULL) || userpass_before(z, k) || ipv6_before(z, k) ||
           (speakers && speaker_before(z, k));
}

/* ------------------------------------------------------------------------------------
 * Numbers (the case view: capitals as `A`, digits as `0`). */

/* `,? (?:A|[\x80-\xff]|PREFIX )` at `i`: where it ends, or -1. */
static Py_ssize_t
building_word(const unsigned char *c, Py_ssize_t n, Py_ssize_t i)
{
    if (i < n && c[i] == ',') {
        i++;
    }
    if (i >= n || c[i] != ' ') {
        return -1;
    }
    i++;
    if (i >= n) {
        return -1;
    }
    if (c[i] == 'A' || c[i] >= 0x80) {
        return i + 1;
    }
    /* No prefix word is the start of another one followed by a space: one can match. */
    for (Py_ssize_t w = first[PREFIX][c[i]]; w < first[PREFIX][c[i] + 1]; w++) {
        Py_ssize_t len = words[PREFIX][w].len;
        if (i + len < n && memcmp(c + i, words[PREFIX][w].text, (size_t)len) == 0 &&
            c[i + len] == ' ') {
            return i + len + 1;
        }
    }
    return -1;
}

static int
word_byte(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || is_lower(ch) || (ch >= '0' && ch <= '9') || ch == '_';
}

/* The digits pass's pattern at `p` (a `0` of the case view): which branch matches (the
 * numbers of `_DIGIT_KINDS` in sensitive.py) and where the match ends, or -1. */
enum { IBAN, RUN, BUILDING };

static int
digits_match(const unsigned char *c, Py_ssize_t n, Py_ssize_t p, Py_ssize_t *end)
{
    if (p > 0) {
        unsigned char before = c[p - 1];
        if (is_lower(before) || before == '0' || before == '_' || before == '.' ||
            before == ',' || before == '$' || before == ':') {
            return -1;
        }
    }
    Py_ssize_t i, units;
    /* IBAN: `0(?<=[^A-Za-z0]AA00)(?: ?[A0]){10,32}+` */
    if (p >= 3 && p + 1 < n && c[p + 1] == '0' && c[p - 1] == 'A' && c[p - 2] == 'A' &&
        !(c[p - 3] == '0' || is_lower(c[p - 3]) || (c[p - 3] >= 'A' && c[p - 3] <= 'Z'))) {
        i = p + 2;
        units = 0;
        while (units < 32) {
            if (i + 1 < n && c[i] == ' ' && (c[i + 1] == 'A' || c[i + 1] == '0')) {
                i += 2;
            }
            else if (i < n && (c[i] == 'A' || c[i] == '0')) {
                i += 1;
            }
            else {
                break;
            }
            units++;
        }
        if (units >= 10) {
            *end = i;
            return IBAN;
        }
    }
    /* A run: `(?:0|[ \-./]0|\) ?0){4,}+` */
    i = p + 1;
    units = 0;
    while (i < n) {
        unsigned char ch = c[i];
        if (ch == '0') {
            i += 1;
        }
        else if ((ch == ' ' || ch == '-' || ch == '.' || ch == '/') && i + 1 < n &&
                 c[i + 1] == '0') {
            i += 2;
        }
        else if (ch == ')' && i + 1 < n && c[i + 1] == '0') {
            i += 2;
        }
        else if (ch == ')' && i + 2 < n && c[i + 1] == ' ' && c[i + 2] == '0') {
            i += 3;
        }
        else {
            break;
        }
        units++;
    }
    if (units >= 4) {
        *end = i;
        return RUN;
    }
    /* A building number: `0{0,4}+` then a word after it. */
    i = p + 1;
    for (units = 0; units < 4 && i < n && c[i] == '0'; units++) {
        i++;
    }
    Py_ssize_t j = i, k;
    if (j < n && c[j] == 'A') {
        j++;
    }
    if (j < n && (c[j] == ' ' || c[j] == '/' || c[j] == '-')) {
        /* `[ /-]0{1,5}+A?` then the word. */
        Py_ssize_t zeros = 0;
        k = j + 1;
        while (zeros < 5 && k < n && c[k] == '0') {
            k++;
            zeros++;
        }
        if (zeros >= 1) {
            if (k < n && c[k] == 'A') {
                k++;
            }
            if ((*end = building_word(c, n, k)) >= 0) {
                return BUILDING;
            }
        }
    }
    if ((*end = building_word(c, n, j)) >= 0) {
        return BUILDING;
    }
    /* ` [a-z]{2,20}+ (?:street|avenue|...)\b` */
    if (i < n && c[i] == ' ') {
        Py_ssize_t len = 0;
        while (len <= 20 && i + 1 + len < n && is_lower(c[i + 1 + len])) {
            len++;
        }
        k = i + 1 + len;
        if (len >= 2 && len <= 20 && k < n && c[k] == ' ') {
            k++;
            unsigned char byte = k < n ? c[k] : 0;
            for (Py_ssize_t w = first[STREET][byte]; w < first[STREET][byte + 1]; w++) {
                Py_ssize_t wl = words[STREET][w].len;
                if (k + wl <= n && memcmp(c + k, words[STREET][w].text, (size_t)wl) == 0 &&
                    (k + wl == n || !word_byte(c[k + wl]))) {
                    *end = k + wl;
                    return BUILDING;
                }
            }
        }
    }
    return -1;
}

static int
name_end(const unsigned char *c, Py_ssize_t at)
{
    /* `(?![A-Za-z\x80-\xff0])` at the byte `at` (read backwards, so it comes before). */
    if (at < 0) {
        return 1;
    }
    unsigned char ch = c[at];
    return !((ch >= 'A' && ch <= 'Z') || is_lower(ch) || ch >= 0x80 || ch == '0');
}

/* The reversed name-before-number pattern at the digit `p` (a number's first digit in
 * the case view): `0 ,?` then, read backwards, a word before the number. Where the word
 * starts, or -1. The branches are tried in the pattern's order. */
static Py_ssize_t
name_number_match(const unsigned char *c, Py_ssize_t p)
{
    if (p < 1 || c[p - 1] != ' ') {
        return -1;
    }
    Py_ssize_t k = p - 1, i;
    if (k > 0 && c[k - 1] == ',') {
        k--;
    }
    /* `\.?[a-z\x80-\xff]*+A++` */
    i = k;
    if (i > 0 && c[i - 1] == '.') {
        i--;
    }
    while (i > 0 && (is_lower(c[i - 1]) || c[i - 1] >= 0x80)) {
        i--;
    }
    if (i > 0 && c[i - 1] == 'A') {
        while (i > 0 && c[i - 1] == 'A') {
            i--;
        }
        if (name_end(c, i - 1)) {
            return i;
        }
    }
    /* `\.[a-z]{1,3}` */
    if (k > 0 && c[k - 1] == '.') {
        Py_ssize_t len = 0;
        while (len <= 3 && k - 1 - len > 0 && is_lower(c[k - 2 - len])) {
            len++;
        }
        if (len >= 1 && len <= 3 && name_end(c, k - 2 - len)) {
            return k - 1 - len;
        }
    }
    /* `\.?[a-z]*+[\x80-\xff][a-z\x80-\xff]*+` */
    i = k;
    if (i > 0 && c[i - 1] == '.') {
        i--;
    }
    while (i > 0 && is_lower(c[i - 1])) {
        i--;
    }
    if (i > 0 && c[i - 1] >= 0x80) {
        i--;
        while (i > 0 && (is_lower(c[i - 1]) || c[i - 1] >= 0x80)) {
            i--;
        }
        if (name_end(c, i - 1)) {
            return i;
        }
    }
    /* A lower-case street word: the first in the list's order that fits. */
    if (k < 1) {
        return -1;
    }
    Py_ssize_t best = -1;
    unsigned char byte = c[k - 1];
    for (Py_ssize_t w = first[LOWER_STREET][byte]; w < first[LOWER_STREET][byte + 1]; w++) {
        const unsigned char *s = words[LOWER_STREET][w].text;
        Py_ssize_t len = words[LOWER_STREET][w].len, m = 0;
        while (m < len && m < k && c[k - 1 - m] == s[m]) {
            m++;
        }
        if (m == len && name_end(c, k - len - 1) && (best < 0 || k - len < best)) {
            best = k - len;
        }
    }
    return best;
}

static int
is_alpha(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || is_lower(ch);
}

/* The number after a name, as `_python_scan` reads it: up to five more digits, and a
 * letter ("12A") that no letter or digit follows. Its end, or -1 where letters or digits
 * go on. */
static Py_ssize_t
house_number_end(const unsigned char *c, Py_ssize_t n, Py_ssize_t p)
{
    Py_ssize_t e = p + 1;
    while (e < n && c[e] == '0' && e - (p + 1) < 5) {
        e++;
    }
    if (e < n && is_alpha(c[e]) && !(e + 1 < n && (is_alpha(c[e + 1]) || c[e + 1] == '0'))) {
        e++;
    }
    if (e < n && (is_alpha(c[e]) || c[e] == '0')) {
        return -1;
    }
    return e;
}

/* ------------------------------------------------------------------------------------ */

static int
append(PyObject *list, Py_ssize_t value)
{
    PyObject *item = PyLong_FromSsize_t(value);
    if (item == NULL) {
        return -1;
    }
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/* Token characters (set up at import). */
static unsigned char token[256];

/* Is `word` at v[at:]? */
static int
word_at(const unsigned char *v, Py_ssize_t n, Py_ssize_t at, const char *word)
{
    size_t len = strlen(word);
    return at >= 0 && (size_t)(n - at) >= len && memcmp(v + at, word, len) == 0;
}

/* The first offset of `word` in v[0:n], or -1. `rare` is the offset in the word of a
 * byte that occurs seldom in text: `memchr` looks for that one. */
static Py_ssize_t
find(const unsigned char *v, Py_ssize_t n, const char *word, Py_ssize_t rare)
{
    const unsigned char *p = v, *end = v + n;
    while (p < end && (p = memchr(p, word[rare], (size_t)(end - p))) != NULL) {
        if (word_at(v, n, p - v - rare, word)) {
            return p - v - rare;
        }
        p++;
    }
    return -1;
}

/* Runs of 20 or more token characters, as start and end offsets. `i` is the first offset
 * where such a run may start; the 20th byte from it is tested first, then the bytes
 * before it: a byte that is no token character rules out every start up to it, so in
 * prose each test skips most of 20 bytes. */
static int
token_runs(PyObject *list, const unsigned char *b, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i + 20 <= n) {
        Py_ssize_t j = i + 19;
        while (j >= i && token[b[j]]) {
            j--;
        }
        if (j >= i) {
            i = j + 1;
            continue;
        }
        Py_ssize_t end = i + 20;
        while (end < n && token[b[end]]) {
            end++;
        }
        if (append(list, i) < 0 || append(list, end) < 0) {
            return -1;
        }
        i = end + 1; /* the byte at `end` is no token character */
    }
    return 0;
}

/* scan(data) -> (case view, lower view, digits, names, colons, equals, runs, words):
 * see `_python_scan` in sensitive.py. */
static PyObject *
scan(PyObject *module, PyObject *data)
{
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes bytes");
        return NULL;
    }
    if (lists[0] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "scan() before setup()");
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *views[2] = {PyBytes_FromStringAndSize(NULL, n), PyBytes_FromStringAndSize(NULL, n)};
    /* digits, names, colons, equals, runs */
    PyObject *found[5] = {PyList_New(0), PyList_New(0), PyList_New(0), PyList_New(0),
                          PyList_New(0)};
    PyObject *result = NULL;
    for (int i = 0; i < 2; i++) {
        if (views[i] == NULL) {
            goto done;
        }
    }
    for (int i = 0; i < 5; i++) {
        if (found[i] == NULL) {
            goto done;
        }
    }
    unsigned char *c = (unsigned char *)PyBytes_AS_STRING(views[0]);
    unsigned char *z = (unsigned char *)PyBytes_AS_STRING(views[1]);
    Py_ssize_t i = 0;
    /* Eight bytes at a time: a byte-per-byte loop costs most of this function. */
    for (; i + 8 <= n; i += 8) {
        uint64_t x, high = 0x8080808080808080u, ones = 0x0101010101010101u;
        memcpy(&x, b + i, 8);
        /* Adding to the low seven bits of a byte sets its high bit from a threshold on;
         * bytes with their high bit set are neither capitals nor digits. */
        uint64_t low = x & ~high;
        uint64_t upper = (low + 0x3F * ones) & ~(low + 0x25 * ones) & ~x & high; /* A-Z */
        uint64_t digit = (low + 0x50 * ones) & ~(low + 0x46 * ones) & ~x & high; /* 0-9 */
        uint64_t upper_bytes = (upper >> 7) * 0xFF, digit_bytes = (digit >> 7) * 0xFF;
        uint64_t cv = (x & ~(upper_bytes | digit_bytes)) | (upper_bytes & 0x41 * ones) |
                      (digit_bytes & 0x30 * ones);
        uint64_t zv = ((x | (upper >> 2)) & ~digit_bytes) | (digit_bytes & 0x30 * ones);
        memcpy(c + i, &cv, 8);
        memcpy(z + i, &zv, 8);
    }
    for (; i < n; i++) {
        unsigned char ch = b[i];
        unsigned char upper = (unsigned char)(ch - 'A') < 26;
        unsigned char digit = (unsigned char)(ch - '0') < 10;
        c[i] = upper ? 'A' : digit ? '0' : ch;
        z[i] = digit ? '0' : (unsigned char)(ch | (upper << 5));
    }
    /* Numbers: both patterns start at a number's first digit (`memchr` skips to digits
     * faster than a loop over every byte). A digits match hides the
     * numbers inside it, as in `finditer`; a name match holds no digit to hide. */
    const unsigned char *p = c, *end = c + n;
    Py_ssize_t after = 0;
    while (p < end && (p = memchr(p, '0', (size_t)(end - p))) != NULL) {
        i = p - c;
        Py_ssize_t stop = 0, start;
        int kind = i >= after ? digits_match(c, n, i, &stop) : -1;
        if (kind >= 0) {
            after = stop;
            if (append(found[0], i) < 0 || append(found[0], stop) < 0 ||
                append(found[0], kind) < 0) {
                goto done;
            }
        }
        if ((start = name_number_match(c, i)) >= 0 && (stop = house_number_end(c, n, i)) >= 0) {
            /* Pairs in reverse, so that the reversed list has them in order. */
            if (append(found[1], stop) < 0 || append(found[1], start) < 0) {
                goto done;
            }
        }
        while (p < end && *p == '0') {
            p++;
        }
    }
    int brackets = memchr(b, ']', (size_t)n) != NULL;
    for (int colon = 1; colon >= 0; colon--) {
        end = z + n;
        for (p = z; p < end && (p = memchr(p, colon ? ':' : '=', (size_t)(end - p))) != NULL;
             p++) {
            i = p - z;
            if (operator_matches(z, i, colon, brackets) && append(found[3 - colon], i) < 0) {
                goto done;
            }
        }
    }
    /* The reversed views are read from the end. */
    if (PyList_Reverse(found[1]) < 0 || PyList_Reverse(found[2]) < 0 ||
        PyList_Reverse(found[3]) < 0) {
        goto done;
    }
    if (token_runs(found[4], b, n) < 0) {
        goto done;
    }
    /* `pass` and `prescri` in one look for `p`. */
    Py_ssize_t pass = -1, prescri = -1;
    end = z + n;
    for (p = z; (pass < 0 || prescri < 0) && p < end &&
                (p = memchr(p, 'p', (size_t)(end - p))) != NULL;
         p++) {
        i = p - z;
        if (pass < 0 && word_at(z, n, i, "pass")) {
            pass = i;
        }
        if (prescri < 0 && word_at(z, n, i, "prescri")) {
            prescri = i;
        }
    }
    result = Py_BuildValue("(OOOOOOO(nnnnn))", views[0], views[1], found[0], found[1], found[2],
                           found[3], found[4], pass, find(z, n, "identified", 6),
                           find(z, n, "diagnos", 3), prescri, find(b, n, "://", 0));
done:
    Py_XDECREF(views[0]);
    Py_XDECREF(views[1]);
    for (int i = 0; i < 5; i++) {
        Py_XDECREF(found[i]);
    }
    return result;
}

/* Is v[0:len] (len > 0) a word of `list`? */
static int
is_word(int list, const unsigned char *v, Py_ssize_t len)
{
    for (Py_ssize_t i = first[list][v[0]]; i < first[list][v[0] + 1]; i++) {
        if (words[list][i].len == len && memcmp(words[list][i].text, v, (size_t)len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* street_context(z, start, comma) -> 1 or 0: `_python_street_context` in sensitive.py,
 * for the 64 bytes before `start` when they are ASCII; -1 when they are not (Python folds
 * their case first). The words are those of `bytes.split` once `,:;()"'` are deleted. */
static PyObject *
street_context(PyObject *module, PyObject *args)
{
    PyObject *data;
    Py_ssize_t start;
    int comma;
    if (!PyArg_ParseTuple(args, "Snp:street_context", &data, &start, &comma)) {
        return NULL;
    }
    if (lists[0] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "street_context() before setup()");
        return NULL;
    }
    const unsigned char *z = (const unsigned char *)PyBytes_AS_STRING(data);
    if (start < 0 || start > PyBytes_GET_SIZE(data)) {
        PyErr_SetString(PyExc_ValueError, "street_context() start out of range");
        return NULL;
    }
    /* The words, copied without the deleted bytes: at most 64 bytes and 32 words. */
    unsigned char text[64];
    Py_ssize_t at[33], size[33], count = 0, len = 0, inside = 0;
    for (Py_ssize_t i = start > 64 ? start - 64 : 0; i < start; i++) {
        unsigned char ch = z[i];
        if (ch >= 0x80) {
            return PyLong_FromLong(-1);
        }
        if (ch == ',' || ch == ':' || ch == ';' || ch == '(' || ch == ')' || ch == '"' ||
            ch == '\'') {
            continue;
        }
        if (space_byte(ch)) {
            if (inside) {
                size[count] = len - at[count];
                count++;
                inside = 0;
            }
            continue;
        }
        if (!inside) {
            at[count] = len;
            inside = 1;
        }
        text[len++] = ch;
    }
    if (inside) {
        size[count] = len - at[count];
        count++;
    }
    /* The checks of the twin, in its order; its first test (no context word at all) only
     * saves time, as each of these needs one. */
    Py_ssize_t recent = count > 10 ? count - 10 : 0, k;
    for (k = count > 3 ? count - 3 : 0; k < count; k++) {
        if (is_word(CONTEXT_PREFIX, text + at[k], size[k])) {
            return PyLong_FromLong(1);
        }
    }
    for (k = recent; k < count; k++) {
        if (is_word(CONTEXT_ADDRESS, text + at[k], size[k])) {
            return PyLong_FromLong(1);
        }
    }
    for (k = count > 5 ? count - 5 : 0; !comma && k < count; k++) {
        if (is_word(CONTEXT_SEND, text + at[k], size[k])) {
            return PyLong_FromLong(1);
        }
    }
    unsigned char pair[130];
    for (k = recent; k + 1 < count; k++) {
        memcpy(pair, text + at[k], (size_t)size[k]);
        pair[size[k]] = ' ';
        memcpy(pair + size[k] + 1, text + at[k + 1], (size_t)size[k + 1]);
        if (is_word(CONTEXT_PAIRS, pair, size[k] + 1 + size[k + 1])) {
            return PyLong_FromLong(1);
        }
    }
    return PyLong_FromLong(0);
}

/* ------------------------------------------------------------------------------------
 * What a run of digits is: `_python_number` in sensitive.py. A run is what the digits
 * pass finds: digits with single separators (` -./`, `)` or `) `) between them. */

/* The longest word of `list` that ends at `end` of the lower-case view and that no
 * lower-case letter precedes, read backwards and not before `lo`: a trie of `_words`
 * followed by `(?![a-z])` in the reversed window (where `lo` is the end of the string),
 * which gives back letters from the longest word that matches until the lookahead holds.
 * The word, or NULL. */
static const word_t *
word_ending(int list, const unsigned char *z, Py_ssize_t lo, Py_ssize_t end)
{
    if (end <= lo) {
        return NULL;
    }
    const word_t *best = NULL;
    unsigned char byte = z[end - 1];
    for (Py_ssize_t i = first[list][byte]; i < first[list][byte + 1]; i++) {
        const word_t *w = &words[list][i];
        if (w->len > end - lo || (best != NULL && w->len <= best->len)) {
            continue;
        }
        Py_ssize_t k = 1;
        while (k < w->len && z[end - 1 - k] == w->text[k]) {
            k++;
        }
        if (k == w->len && (end - w->len == lo || !is_lower(z[end - w->len - 1]))) {
            best = w;
        }
    }
    return best;
}

/* `_GAP`, `[^a-z0\x80-\xff]*+`, read backwards from `k` down to `lo` at most. */
static Py_ssize_t
label_gap(const unsigned char *z, Py_ssize_t lo, Py_ssize_t k)
{
    while (k > lo && !(is_lower(z[k - 1]) || z[k - 1] == '0' || z[k - 1] >= 0x80)) {
        k--;
    }
    return k;
}

/* `_FILL`: filler words, each followed by a gap. The repetition is possessive and each
 * word the first reading of the trie that fits: one reading, no other is tried. */
static Py_ssize_t
label_fill(const unsigned char *z, Py_ssize_t lo, Py_ssize_t k)
{
    const word_t *w;
    while ((w = word_ending(FILLER, z, lo, k)) != NULL) {
        k = label_gap(z, lo, k - w->len);
    }
    return k;
}

/* `_label`: `_LABEL_REVERSED` on the 48 bytes of the lower-case view before `start`. The
 * kind of label (PHONE too for a bare "number"), or -1. */
static int
label_kind(const unsigned char *z, Py_ssize_t start)
{
    Py_ssize_t lo = start > 48 ? start - 48 : 0;
    Py_ssize_t k = label_fill(z, lo, label_gap(z, lo, start));
    /* The optional tail is never given back once it matches: what follows it always
     * matches too (the empty `none` branch), even where a label would have matched
     * without the tail ("tax id" reads as the tail "id" and no label). */
    const word_t *tail = word_ending(TAIL, z, lo, k);
    if (tail != NULL) {
        k = label_fill(z, lo, label_gap(z, lo, k - tail->len));
    }
    for (int kind = 0; kind < KINDS; kind++) {
        if (word_ending(LABEL + kind, z, lo, k) != NULL) {
            return kind;
        }
    }
    return tail != NULL && is_word(NUMBER_TAIL, tail->text, tail->len) ? PHONE : -1;
}

enum { SEP_SPACE = 1, SEP_DASH = 2, SEP_DOT = 4, SEP_SLASH = 8 };

/* `_Shape` of a run, and its digits. */
typedef struct {
    Py_ssize_t digits;         /* how many */
    Py_ssize_t groups;         /* how many groups (`len(sizes)`) */
    Py_ssize_t size[8];        /* the sizes of the first groups */
    long value[3];             /* the numbers of the first groups (of up to 9 digits) */
    Py_ssize_t odd;            /* groups before the last one that have not four digits */
    int seps;                  /* the separators (`SEP_*`), `)` alone counted as a space */
    unsigned seen;             /* the digit values that occur, a bit each */
    unsigned char head[20];    /* the first digits, as bytes */
} shape_t;

/* The shape of the run b[start:end]: its case view c[start:end] must read as the digits
 * pass's runs do, `0(?:0|[ \-./]0|\) ?0)*` (where the group sizes are those of
 * `_python_number`'s slices), and `b` must have a digit where `c` has `0`; -1 if not. */
static int
run_shape(const unsigned char *b, const unsigned char *c, Py_ssize_t start, Py_ssize_t end,
          shape_t *s)
{
    memset(s, 0, sizeof *s);
    Py_ssize_t size = 0, previous = 0;
    int close = 0;
    unsigned char last = 0; /* the byte before: a separator follows a digit, or ` ` a `)` */
    for (Py_ssize_t i = start; i <= end; i++) {
        if (i < end && c[i] == '0') {
            unsigned digit = (unsigned)b[i] - '0';
            if (digit > 9) {
                return -1;
            }
            if (s->digits < 20) {
                s->head[s->digits] = b[i];
            }
            s->digits++;
            s->seen |= 1u << digit;
            if (s->groups < 3 && size < 9) {
                s->value[s->groups] = s->value[s->groups] * 10 + (long)digit;
            }
            size++;
            last = '0';
            continue;
        }
        if (size > 0) {
            s->odd += s->groups > 0 && previous != 4;
            if (s->groups < 8) {
                s->size[s->groups] = size;
            }
            s->groups++;
            previous = size;
            size = 0;
        }
        if (i == end) {
            break;
        }
        unsigned char ch = c[i];
        if (!(last == '0' || (last == ')' && ch == ' '))) {
            return -1;
        }
        if (ch == ' ') {
            s->seps |= SEP_SPACE;
        }
        else if (ch == '-') {
            s->seps |= SEP_DASH;
        }
        else if (ch == '.') {
            s->seps |= SEP_DOT;
        }
        else if (ch == '/') {
            s->seps |= SEP_SLASH;
        }
        else if (ch == ')') {
            close = 1;
        }
        else {
            return -1;
        }
        last = ch;
    }
    if (start < end && last != '0') {
        return -1;
    }
    if (s->seps == 0 && close) {
        s->seps = SEP_SPACE;
    }
    return 0;
}

/* Are the sizes of the groups `count` and those of `want`? */
static int
sizes_are(const shape_t *s, Py_ssize_t count, const int *want)
{
    if (s->groups != count) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (s->size[i] != want[i]) {
            return 0;
        }
    }
    return 1;
}

static int
is_date(const shape_t *s)
{
    long year, month, day;
    if (s->size[0] == 4 && s->size[1] <= 2 && s->size[2] <= 2) {
        year = s->value[0], month = s->value[1], day = s->value[2];
    }
    else if (s->size[2] == 4 && s->size[0] <= 2 && s->size[1] <= 2) {
        year = s->value[2], month = s->value[0], day = s->value[1];
        if (month > 12) {
            long swap = month;
            month = day;
            day = swap;
        }
    }
    else {
        return 0;
    }
    return year >= 1800 && year <= 2199 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

static int
strong_phone(const unsigned char *b, Py_ssize_t n, Py_ssize_t start, const shape_t *s)
{
    if (s->digits < 7 || s->digits > 15) {
        return 0;
    }
    if ((start >= 1 && b[start - 1] == '+') ||
        (start >= 2 && b[start - 2] == '+' && b[start - 1] == ' ')) {
        return s->digits >= 8;
    }
    if (start >= 1 && b[start - 1] == '(' &&
        memchr(b + start, ')', (size_t)(n - start < 6 ? n - start : 6)) != NULL) {
        return 1;
    }
    if (start + 2 <= n && b[start] == '0' && b[start + 1] == '0' && s->digits >= 10 && s->seps) {
        return 1;
    }
    if (s->seps == SEP_DASH || s->seps == SEP_DOT) {
        return sizes_are(s, 3, (const int[]){3, 3, 4}) ||
               sizes_are(s, 4, (const int[]){1, 3, 3, 4});
    }
    return 0;
}

static int
card_like(const shape_t *s)
{
    return (s->seps == 0 || s->seps == SEP_SPACE || s->seps == SEP_DASH) &&
           (s->odd == 0 || sizes_are(s, 3, (const int[]){4, 6, 5}) ||
            sizes_are(s, 3, (const int[]){4, 6, 4}));
}

static int
luhn(const unsigned char *digits, Py_ssize_t n)
{
    int total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int x = digits[n - 1 - i] - '0';
        total += i & 1 ? (x > 4 ? 2 * x - 9 : 2 * x) : x;
    }
    return total % 10 == 0;
}

static int
card_prefix(const unsigned char *d)
{
    if (d[0] >= '3' && d[0] <= '6') {
        return 1;
    }
    int head = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    return (head >= 2221 && head <= 2720) || (head >= 2200 && head <= 2204) || head == 1800 ||
           head == 2131;
}

/* `_pesel` on the run's bytes (eleven digits). */
static int
pesel(const unsigned char *d)
{
    static const int weights[10] = {1, 3, 7, 9, 1, 3, 7, 9, 1, 3};
    int total = 0;
    for (int i = 0; i < 10; i++) {
        total += weights[i] * (d[i] - '0');
    }
    if ((10 - total % 10) % 10 != d[10] - '0') {
        return 0;
    }
    int month = ((d[2] - '0') * 10 + d[3] - '0') % 20, day = (d[4] - '0') * 10 + d[5] - '0';
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/* `_nip` on the run's bytes without its dashes (ten digits among them), as
 * `_python_number` passes them: a `)` between the groups stays, a digit worth -7. */
static int
nip(const unsigned char *raw, Py_ssize_t len)
{
    static const int weights[9] = {6, 5, 7, 2, 3, 4, 5, 6, 7};
    unsigned char d[10];
    int count = 0;
    for (Py_ssize_t i = 0; i < len && count < 10; i++) {
        if (raw[i] != '-') {
            d[count++] = raw[i];
        }
    }
    int total = 0;
    for (int i = 0; i < 9; i++) {
        total += weights[i] * (d[i] - '0');
    }
    total = (total % 11 + 11) % 11; /* Python's modulo, never negative */
    return total != 10 && total == d[9] - '0';
}

/* `, ST ` before `start` (a state in `_US_STATES`), in the text's bytes. */
static int
state_before(const unsigned char *b, Py_ssize_t start)
{
    if (start < 5 || b[start - 5] != ',' || b[start - 1] != ' ') {
        return 0;
    }
    Py_ssize_t from = start - 4, to = start - 1, len = 0;
    while (from < to && b[from] == ' ') {
        from++;
    }
    while (to > from && b[to - 1] == ' ') {
        to--;
    }
    unsigned char state[3];
    for (; from < to; from++) {
        unsigned char ch = b[from];
        state[len++] = is_lower(ch) ? (unsigned char)(ch - 32) : ch;
    }
    return len > 0 && is_word(STATES, state, len);
}

/* `_MILITARY_BOX` (`(?:APO|FPO|DPO) (?:AA|AE|AP) $`) in the 16 bytes before `start`: `$`
 * matches at their end or before a newline that ends them. */
static int
military_box(const unsigned char *b, Py_ssize_t start)
{
    Py_ssize_t k = start > 0 && b[start - 1] == '\n' ? start - 1 : start;
    if (k < 7) {
        return 0;
    }
    const unsigned char *m = b + k - 7;
    return (m[0] == 'A' || m[0] == 'F' || m[0] == 'D') && memcmp(m + 1, "PO A", 4) == 0 &&
           (m[5] == 'A' || m[5] == 'E' || m[5] == 'P') && m[6] == ' ';
}

/* `_labelled_id`: a run with letters in front (`D1234567`, `CLM-2023-88817`). */
static const char *
labelled_id(const unsigned char *c, const unsigned char *z, Py_ssize_t start, Py_ssize_t *from)
{
    Py_ssize_t s = c[start - 1] == '-' ? start - 1 : start;
    while (s > 0 && c[s - 1] == 'A' && start - s < 7) {
        s--;
    }
    if (s > 0 && (is_lower(c[s - 1]) || c[s - 1] == '0' || c[s - 1] == '_')) {
        return NULL;
    }
    *from = s;
    int kind = label_kind(z, s);
    return kind == NID || kind == DL ? "national_id" : kind == ACCT ? "account_number" : NULL;
}

/* `_python_number` for the run b[start:end] of shape `s`: the kind it reports, from `*from`
 * to `end`; "ipv4" for a dotted quad, which Python judges; or NULL. Each test is the
 * twin's, in its order. */
static const char *
number_kind(const unsigned char *b, const unsigned char *c, const unsigned char *z, Py_ssize_t n,
            Py_ssize_t start, Py_ssize_t end, const shape_t *s, Py_ssize_t *from)
{
    *from = start;
    if ((start >= 1 && c[start - 1] == 'A') ||
        (start >= 2 && c[start - 2] == 'A' && c[start - 1] == '-')) {
        return end < n && is_lower(c[end]) ? NULL : labelled_id(c, z, start, from);
    }
    Py_ssize_t digits = s->digits;
    /* One or two digit values (555-555-5555, 4242 4242 4242 4242): with the lowest bit of
     * `seen` cleared, one bit at most is left. A card only after a card word. */
    unsigned others = s->seen & (s->seen - 1);
    if ((others & (others - 1)) == 0) {
        int card = digits >= 12 && digits <= 19 && luhn(s->head, digits) &&
                   label_kind(z, start) == CARD;
        return card ? "payment_card" : NULL;
    }
    if (s->seps == SEP_DOT) {
        if (s->groups == 4 && s->size[0] <= 3 && s->size[1] <= 3 && s->size[2] <= 3 &&
            s->size[3] <= 3 && memchr(b + start, ')', (size_t)(end - start)) == NULL) {
            return "ipv4";
        }
        if (!sizes_are(s, 3, (const int[]){3, 3, 4})) {
            return NULL;
        }
    }
    else if (s->seps & SEP_DOT) {
        return NULL;
    }
    if (s->groups == 3 && (s->seps == SEP_DASH || s->seps == SEP_SLASH || s->seps == SEP_DOT) &&
        is_date(s)) {
        return NULL;
    }
    /* An SSN with dashes, within the SSA's area, group and serial rules (`_ssn`). */
    if (sizes_are(s, 3, (const int[]){3, 2, 4}) && s->seps == SEP_DASH && s->value[0] > 0 &&
        s->value[0] < 900 && s->value[0] != 666 && s->value[1] > 0 && s->value[2] > 0) {
        return "national_id";
    }
    int strong = strong_phone(b, n, start, s), card = 0;
    if (digits >= 12 && digits <= 19 && card_like(s)) {
        card = luhn(s->head, digits);
        if (card && digits >= 13 && card_prefix(s->head) && !strong) {
            return "payment_card";
        }
    }
    if (strong) {
        return "phone";
    }
    int kind = label_kind(z, start);
    if (kind == NID || kind == DL) {
        return "national_id";
    }
    if (kind == CARD) {
        return card ? "payment_card" : NULL; /* a label cannot make a card of a Luhn failure */
    }
    if (digits == 11 && s->groups == 1 && pesel(b + start)) {
        return "national_id";
    }
    if (digits == 10 && s->seps == SEP_DASH &&
        (sizes_are(s, 4, (const int[]){3, 3, 2, 2}) ||
         sizes_are(s, 4, (const int[]){3, 2, 2, 3})) &&
        nip(b + start, end - start)) {
        return "national_id";
    }
    if (kind == ACCT) {
        return "account_number";
    }
    if ((digits == 5 || sizes_are(s, 2, (const int[]){5, 4})) &&
        (state_before(b, start) || military_box(b, start))) {
        return "postal_address";
    }
    if (kind == PHONE && digits >= 7 && digits <= 15 && s->groups <= 6) {
        return "phone";
    }
    return NULL;
}

/* The arguments of number() and building_number(): a text and its two views (bytes of
 * one length), then `count` offsets in them, each not before the one before it. 0, or -1
 * with the exception set. */
static int
view_args(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t count,
          const unsigned char *views[3], Py_ssize_t *offsets)
{
    if (nargs != 3 + count) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments", name, 3 + count);
        return -1;
    }
    if (!PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2])) {
        PyErr_Format(PyExc_TypeError, "%s() takes bytes", name);
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        offsets[k] = PyLong_AsSsize_t(args[3 + k]);
        if (offsets[k] == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (lists[0] == NULL) {
        PyErr_Format(PyExc_RuntimeError, "%s() before setup()", name);
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), previous = 0;
    int fits = PyBytes_GET_SIZE(args[1]) == n && PyBytes_GET_SIZE(args[2]) == n;
    for (Py_ssize_t k = 0; k < count; k++) {
        fits = fits && offsets[k] >= previous && offsets[k] <= n;
        previous = offsets[k];
    }
    if (!fits) {
        PyErr_Format(PyExc_ValueError, "%s() takes views of one length and offsets in them",
                     name);
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        views[k] = (const unsigned char *)PyBytes_AS_STRING(args[k]);
    }
    return 0;
}

/* number(b, c, z, start, end) -> (kind, start, end) or None: what `_python_number` in
 * sensitive.py reports for the run at b[start:end] (`b` the text, `c` and `z` its views),
 * or ("ipv4", start, end) for a dotted quad: `_ipv4` reads the kinds found so far and two
 * patterns, and stays in Python. */
static PyObject *
number(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *views[3];
    Py_ssize_t run[2];
    if (view_args("number", args, nargs, 2, views, run) < 0) {
        return NULL;
    }
    const unsigned char *b = views[0], *c = views[1], *z = views[2];
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), start = run[0], end = run[1];
    shape_t shape;
    if (run_shape(b, c, start, end, &shape) < 0) {
        PyErr_SetString(PyExc_ValueError, "number() takes a run of digits and separators");
        return NULL;
    }
    Py_ssize_t from;
    const char *kind = number_kind(b, c, z, n, start, end, &shape, &from);
    if (kind == NULL) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(snn)", kind, from, end);
}

/* label(z, start) -> the kind of label before a number at `start` of the lower-case view,
 * or None: `_label` in sensitive.py, which `number` reads; on its own for the tests. */
static PyObject *
label(PyObject *module, PyObject *args)
{
    PyObject *data;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "Sn:label", &data, &start)) {
        return NULL;
    }
    if (lists[0] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "label() before setup()");
        return NULL;
    }
    if (start < 0 || start > PyBytes_GET_SIZE(data)) {
        PyErr_SetString(PyExc_ValueError, "label() start out of range");
        return NULL;
    }
    int kind = label_kind((const unsigned char *)PyBytes_AS_STRING(data), start);
    if (kind < 0) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(kind_names[kind]);
}

/* ------------------------------------------------------------------------------------
 * What follows a building number: `_python_building_number` in sensitive.py. Its three
 * patterns start at the number's first digit; each reads one way only, or two (below),
 * so plain loops decide them without backtracking. */

static int
is_upper(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z';
}

static int
is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

/* What the lookahead after a street type, `(?=[\s.,;:)]|$)`, accepts (but the end). */
static int
street_end(unsigned char ch)
{
    return space_byte(ch) || ch == '.' || ch == ',' || ch == ';' || ch == ':' || ch == ')';
}

static int
is_space(unsigned char ch)
{
    return ch == ' ';
}

/* The word of `list` at v[at:] that a byte for which `after` holds follows (or the end of
 * the text, when `at_end`): its length, or 0. No word of these lists holds such a byte
 * (the tests check it), so the word can only end at the first one: one word fits at most,
 * whatever order the pattern tries them in, and only words of that length are compared
 * with the text (comparing each word of the same first byte took twice as long). */
static Py_ssize_t
word_after(int list, const unsigned char *v, Py_ssize_t n, Py_ssize_t at,
           int (*after)(unsigned char), int at_end)
{
    Py_ssize_t stop = at, most = n - at < longest[list] ? n : at + longest[list];
    while (stop < most && !after(v[stop])) {
        stop++;
    }
    Py_ssize_t len = stop - at;
    if (len == 0 || (stop == n ? !at_end : !after(v[stop]))) {
        return 0;
    }
    /* `is_word` without a call of `memcmp` for each word of the same length. */
    for (Py_ssize_t i = first[list][v[at]]; i < first[list][v[at] + 1]; i++) {
        const unsigned char *w = words[list][i].text;
        Py_ssize_t k = 1;
        if (words[list][i].len != len) {
            continue;
        }
        while (k < len && v[at + k] == w[k]) {
            k++;
        }
        if (k == len) {
            return len;
        }
    }
    return 0;
}

static Py_ssize_t
skip_blanks(const unsigned char *v, Py_ssize_t n, Py_ssize_t i)
{
    while (i < n && space_byte(v[i])) {
        i++;
    }
    return i;
}

/* A byte of `_WORD`, `[^\s,;:()\[\]"'<>]`. */
static int
street_word_byte(unsigned char ch)
{
    return !(space_byte(ch) || ch == ',' || ch == ';' || ch == ':' || ch == '(' || ch == ')' ||
             ch == '[' || ch == ']' || ch == '"' || ch == '\'' || ch == '<' || ch == '>');
}

/* `_WORD\s+` at `i`: where the next word starts, or -1. A word can only be followed by a
 * blank when it is taken whole, and the blanks only by a word or a street type when they
 * are, so the greedy repeats read the same as possessive ones. */
static Py_ssize_t
next_street_word(const unsigned char *z, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t len = 0;
    while (len <= 30 && i + len < n && street_word_byte(z[i + len])) {
        len++;
    }
    if (len < 1 || len > 30 || i + len >= n || !space_byte(z[i + len])) {
        return -1;
    }
    return skip_blanks(z, n, i + len);
}

/* A match of one of `_STREET_AFTER`: its groups and end. */
typedef struct {
    Py_ssize_t words;          /* where group 1 (the words) starts */
    Py_ssize_t type, type_len; /* group 2, the street type (it ends group 1) */
    int dot;                   /* group 3 */
    Py_ssize_t end;
} street_t;

/* The end of one of `_STREET_AFTER`, its words from `at` to `p` (the words it is for): a
 * street type at `p`, an optional dot and the lookahead. */
static int
street_match(const unsigned char *z, Py_ssize_t n, Py_ssize_t at, Py_ssize_t p, street_t *m)
{
    if (p < 0) {
        return 0;
    }
    Py_ssize_t len = word_after(STREET_TYPE, z, n, p, street_end, 1);
    if (len == 0) {
        return 0;
    }
    Py_ssize_t e = p + len;
    /* `\.?` takes a dot that the lookahead accepts after it; else it is the lookahead's. */
    m->words = at;
    m->type = p;
    m->type_len = len;
    m->dot = e < n && z[e] == '.' && (e + 1 == n || street_end(z[e + 1]));
    m->end = e + m->dot;
    return 1;
}

/* `_street_after`: does the match hold? */
static int
street_after(const unsigned char *b, const unsigned char *z, Py_ssize_t n, Py_ssize_t start,
             const street_t *m)
{
    const unsigned char *kind = z + m->type;
    Py_ssize_t len = m->type_len;
    if (len == 2 && kind[0] == 's' && kind[1] == 't' && m->dot && m->end + 1 < n &&
        b[m->end] == ' ' && is_upper(b[m->end + 1])) {
        return 0; /* Saint */
    }
    int more = is_word(MORE_SUFFIX, kind, len);
    if (!more && !is_word(AMBIGUOUS, kind, len)) {
        return 1;
    }
    if (more) {
        /* The number up to its first blank: a year ("the 1992 Olympic Village")? */
        Py_ssize_t e = start;
        while (e < n && !space_byte(b[e])) {
            e++;
        }
        if (e - start == 4 && ((b[start] == '1' && b[start + 1] == '9') ||
                               (b[start] == '2' && b[start + 1] == '0'))) {
            return 0;
        }
    }
    /* Each word capitalised (with a lower-case letter), non-ASCII or a number. */
    int names = 0;
    for (Py_ssize_t i = m->words; i < m->type;) {
        if (space_byte(b[i])) {
            i++;
            continue;
        }
        unsigned char initial = b[i];
        int lower = 0;
        while (i < m->type && !space_byte(b[i])) {
            lower |= is_lower(b[i]);
            i++;
        }
        if (!((is_upper(initial) && lower) || initial >= 0x80 || is_digit(initial))) {
            return 0;
        }
        names++;
    }
    return names > 0;
}

/* `_UP` then `_REST*+` (`_CAPITALISED`) at `i` of the case view: where it ends, or -1. */
static Py_ssize_t
capitalised(const unsigned char *c, Py_ssize_t n, Py_ssize_t i)
{
    if (i >= n) {
        return -1;
    }
    unsigned char x = c[i], y = i + 1 < n ? c[i + 1] : 0;
    if (x == 'A') {
        i++;
    }
    else if ((x == 0xc3 && y >= 0x80 && y <= 0x9e) ||
             ((x == 0xc4 || x == 0xc5) && y >= 0x80 && y <= 0xbf) ||
             (x == 0xd0 && y >= 0x80 && y <= 0xaf) || (x == 0xce && y >= 0x86 && y <= 0xab)) {
        i += 2;
    }
    else {
        return -1;
    }
    while (i < n && (is_alpha(c[i]) || c[i] >= 0x80)) {
        i++;
    }
    return i;
}

/* `_NUMBER_NAME_NUMBER` from `i`, just after the number's first digits in the case view.
 * Where its first name starts and ends (`*name`, `*name_end`) and where it ends, or -1.
 * The possessive names and the optional parts read one way: each can only give back
 * what the byte after it (a digit, a letter, a dot) then fails. */
static Py_ssize_t
name_number(const unsigned char *c, Py_ssize_t n, Py_ssize_t i, Py_ssize_t *name,
            Py_ssize_t *name_end)
{
    if (i < n && c[i] == 'A') {
        i++;
    }
    if (i + 1 < n && (c[i] == ' ' || c[i] == '/' || c[i] == '-') && c[i + 1] == '0') {
        /* `[ /-]0{1,5}+A?`: without it, ` ` would be followed by a digit, no name. */
        Py_ssize_t zeros = 0;
        for (i++; i < n && c[i] == '0'; i++) {
            zeros++;
        }
        if (zeros > 5) {
            return -1;
        }
        if (i < n && c[i] == 'A') {
            i++;
        }
    }
    if (i >= n || c[i] != ' ') {
        return -1;
    }
    *name = i + 1;
    if ((i = *name_end = capitalised(c, n, *name)) < 0) {
        return -1;
    }
    if (i < n && c[i] == '.') {
        i++;
    }
    /* Up to two more names; a name after them fails the house number, whichever of them
     * the repeat gives back. */
    for (int more = 0; more < 2 && i < n && c[i] == ' '; more++) {
        Py_ssize_t e = capitalised(c, n, i + 1);
        if (e < 0) {
            break;
        }
        i = e < n && c[e] == '.' ? e + 1 : e;
    }
    if (i >= n || c[i] != ' ') {
        return -1;
    }
    Py_ssize_t zeros = 0;
    for (i++; i < n && c[i] == '0'; i++) {
        zeros++;
    }
    if (zeros < 1 || zeros > 5 || (i < n && is_alpha(c[i]))) {
        return -1;
    }
    return i;
}

/* `_NUMBER_PREFIX_NAME` from `i`, just after the number's first digits in the lower-case
 * view: where it ends, or -1; `*prefix` and `*prefix_len` say which prefix it read. */
static Py_ssize_t
prefix_name(const unsigned char *z, Py_ssize_t n, Py_ssize_t i, Py_ssize_t *prefix,
            Py_ssize_t *prefix_len)
{
    if (i < n && is_lower(z[i])) {
        i++;
    }
    if (i < n && z[i] == ',') {
        i++;
    }
    if (i >= n || z[i] != ' ') {
        return -1;
    }
    i++;
    /* The prefix must be followed by a space, whether articles come or not. */
    Py_ssize_t len = word_after(NAME_PREFIX, z, n, i, is_space, 0);
    if (len == 0) {
        return -1;
    }
    *prefix = i;
    *prefix_len = len;
    i += len;
    /* `(?: ARTICLE(?= ))*+ `: each article is followed by the space that ends the match. */
    for (;;) {
        Py_ssize_t a = z[i] == ' ' ? word_after(ARTICLE, z, n, i + 1, is_space, 0) : 0;
        if (a == 0) {
            break;
        }
        i += 1 + a;
    }
    return i + 1;
}

/* building_number(b, c, z, start) -> (start, end) or None: the "postal_address" hit that
 * `_python_building_number` in sensitive.py reports for a building number at `start`. */
static PyObject *
building_number(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *views[3];
    Py_ssize_t start;
    if (view_args("building_number", args, nargs, 1, views, &start) < 0) {
        return NULL;
    }
    const unsigned char *b = views[0], *c = views[1], *z = views[2];
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    /* All three patterns start with `0{1,6}`: shorter, it would be followed by a digit,
     * which none of them takes there. */
    Py_ssize_t i = start;
    while (i < n && z[i] == '0' && i - start <= 6) {
        i++;
    }
    if (i == start || i - start > 6) {
        Py_RETURN_NONE;
    }
    /* A street type within three words (`_ANY_STREET_AFTER` says whether one of the
     * patterns matches: these are the patterns). The words start after the number, or
     * after a second number (`12 345`, `12/3`), the first reading tried; each pattern
     * reports its first reading that matches, and the first that `_street_after`
     * accepts wins. */
    Py_ssize_t from[2], readings = 0, s = i < n && is_lower(z[i]) ? i + 1 : i;
    if (s + 1 < n && (z[s] == ' ' || z[s] == '/' || z[s] == '-') && z[s + 1] == '0') {
        Py_ssize_t j = s + 1;
        while (j < n && z[j] == '0') {
            j++;
        }
        if (j - (s + 1) <= 5) {
            if (j < n && is_lower(z[j])) {
                j++;
            }
            if (j < n && space_byte(z[j])) {
                from[readings++] = skip_blanks(z, n, j);
            }
        }
    }
    if (s < n && space_byte(z[s])) {
        from[readings++] = skip_blanks(z, n, s);
    }
    Py_ssize_t word[2][4]; /* where each word starts after the number, in each reading */
    for (Py_ssize_t r = 0; r < readings; r++) {
        word[r][0] = from[r];
        for (int k = 1; k < 4; k++) {
            word[r][k] = word[r][k - 1] < 0 ? -1 : next_street_word(z, n, word[r][k - 1]);
        }
    }
    for (int count = 0; count < 4; count++) { /* `_STREET_AFTER`: 0 to 3 words */
        street_t m = {0};
        int found = 0;
        for (Py_ssize_t r = 0; r < readings && !found; r++) {
            found = street_match(z, n, from[r], word[r][count], &m);
        }
        if (found && street_after(b, z, n, start, &m)) {
            return Py_BuildValue("(nn)", start, m.end);
        }
    }
    /* A name and a house number, the name no everyday word and the number no year. */
    Py_ssize_t name = 0, name_end = 0, end = name_number(c, n, i, &name, &name_end);
    if (end >= 0 && !is_word(NOT_STREET, z + name, name_end - name)) {
        const unsigned char *house = b + end - 4;
        int year = ((house[0] == '1' && house[1] == '9') ||
                    (house[0] == '2' && house[1] == '0')) &&
                   is_digit(house[2]) && is_digit(house[3]);
        if (!year) {
            return Py_BuildValue("(nn)", start, end);
        }
    }
    /* A street prefix: then a capitalised name, or any word after a lower-case prefix. */
    Py_ssize_t prefix = 0, prefix_len = 0;
    end = prefix_name(z, n, i, &prefix, &prefix_len);
    if (end >= 0 && ((end < n && c[end] == 'A') || is_word(PREFIX, z + prefix, prefix_len))) {
        return Py_BuildValue("(nn)", start, end + 1);
    }
    Py_RETURN_NONE;
}

/* classes(data) -> (upper, lower, digits, runs): see `_python_classes` in sensitive.py.
 * Judging a long token or a key's value counts its classes several times; in Python the
 * count takes a view, three counts and a shifted XOR of the whole value. */
static PyObject *
classes(PyObject *module, PyObject *data)
{
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "classes() takes bytes");
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    Py_ssize_t upper = 0, lower = 0, digits = 0, runs = n > 0;
    int previous = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        int kind = ch;
        if (ch >= 'A' && ch <= 'Z') {
            kind = 'A';
            upper++;
        }
        else if (is_lower(ch)) {
            kind = 'a';
            lower++;
        }
        else if (ch >= '0' && ch <= '9') {
            kind = '0';
            digits++;
        }
        runs += previous >= 0 && kind != previous;
        previous = kind;
    }
    return Py_BuildValue("(nnnn)", upper, lower, digits, runs);
}

/* setup(*word_lists): the patterns' words, each list a tuple of bytes (see sensitive.py). */
static PyObject *
setup(PyObject *module, PyObject *args)
{
    if (PyTuple_GET_SIZE(args) != LISTS) {
        PyErr_Format(PyExc_TypeError, "setup() takes %d word lists", LISTS);
        return NULL;
    }
    for (int i = 0; i < LISTS; i++) {
        PyObject *list = PyTuple_GET_ITEM(args, i);
        if (!PyTuple_Check(list)) {
            PyErr_SetString(PyExc_TypeError, "setup() takes tuples of bytes");
            return NULL;
        }
        for (Py_ssize_t w = 0; w < PyTuple_GET_SIZE(list); w++) {
            if (!PyBytes_Check(PyTuple_GET_ITEM(list, w))) {
                PyErr_SetString(PyExc_TypeError, "setup() takes tuples of bytes");
                return NULL;
            }
        }
    }
    for (int i = 0; i < LISTS; i++) {
        PyObject *list = PyTuple_GET_ITEM(args, i);
        Py_ssize_t count = PyTuple_GET_SIZE(list);
        word_t *grouped = PyMem_Malloc(sizeof(word_t) * (size_t)(count + 1));
        if (grouped == NULL) {
            return PyErr_NoMemory();
        }
        /* Counts per first byte, then where each group starts (empty words match
         * nowhere: the patterns have none). */
        Py_ssize_t *starts = first[i], next[256];
        memset(starts, 0, sizeof(first[i]));
        longest[i] = 0;
        for (Py_ssize_t w = 0; w < count; w++) {
            PyObject *word = PyTuple_GET_ITEM(list, w);
            if (PyBytes_GET_SIZE(word) > 0) {
                starts[(unsigned char)PyBytes_AS_STRING(word)[0] + 1]++;
            }
        }
        for (int x = 0; x < 256; x++) {
            starts[x + 1] += starts[x];
            next[x] = starts[x];
        }
        for (Py_ssize_t w = 0; w < count; w++) {
            PyObject *word = PyTuple_GET_ITEM(list, w);
            const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(word);
            if (PyBytes_GET_SIZE(word) > 0) {
                grouped[next[text[0]]++] = (word_t){text, PyBytes_GET_SIZE(word)};
            }
            if (PyBytes_GET_SIZE(word) > longest[i]) {
                longest[i] = PyBytes_GET_SIZE(word);
            }
        }
        PyMem_Free(words[i]);
        words[i] = grouped;
        Py_INCREF(list);
        Py_XSETREF(lists[i], list);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O, "scan(data) -> views and candidates: see sidecar/classifiers/sensitive.py"},
    {"setup", setup, METH_VARARGS, "setup(*word_lists): the patterns' words"},
    {"classes", classes, METH_O, "classes(data) -> (upper, lower, digits, runs) of a value"},
    {"street_context", street_context, METH_VARARGS,
     "street_context(z, start, comma) -> 1, 0, or -1 for non-ASCII words before `start`"},
    {"number", (PyCFunction)(void (*)(void))number, METH_FASTCALL,
     "number(b, c, z, start, end) -> (kind, start, end) or None for a run of digits"},
    {"label", label, METH_VARARGS, "label(z, start) -> the kind of label before a number, or None"},
    {"building_number", (PyCFunction)(void (*)(void))building_number, METH_FASTCALL,
     "building_number(b, c, z, start) -> (start, end) or None after a building number"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sensitive",
    "The sensitive classifier's views and candidates in C (see sensitive.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__sensitive(void)
{
    for (int i = 0; i < 256; i++) {
        token[i] = (unsigned char)(word_byte((unsigned char)i) || (i && strchr("-+/=.~", i)));
    }
    return PyModule_Create(&module);
}
