// csv.h: an RFC 4180 CSV reader for the probes' data files.
//
// The whole file is parsed into memory, because the probes' CSV files are below 1 MB. Quoted fields
// may contain doubled quotes (""), commas, CR and LF. Records may end in CRLF, LF or CR, and the
// last one may have no line end. A UTF-8 byte order mark before the header is skipped.
//
// Limitations, each reported as an error with the file and line:
// - every record must have as many fields as the header;
// - a quote inside an unquoted field, text after a closing quote and an unterminated quoted
//   field are rejected (RFC 4180 section 2, rules 5-7);
// - NUL bytes and invalid UTF-8 are rejected, because the fields become C strings that are
//   tokenized and written to JSON.
//
// Blank lines outside quoted fields are skipped, as Python's csv.DictReader does.
#ifndef QBIAS_CSV_H
#define QBIAS_CSV_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **fields;  // n_fields NUL-terminated strings, owned by the table
    int n_fields;
    int64_t line;   // 1-based line of the file where the record starts
} CsvRecord;

typedef struct {
    char *path;           // file name used in messages, owned
    CsvRecord header;     // the first record
    CsvRecord *records;   // n_records data records after the header, owned
    int64_t n_records;
} CsvTable;

// Parses `len` bytes of CSV text. `path` names the source in error messages. On success the table
// owns copies of every field; free it with csv_free(). Returns 0, or -1 with an error that names
// the file, the line and the problem.
int csv_parse(const char *path, const char *data, size_t len, CsvTable *out);

// Reads and parses a CSV file (see csv_parse).
int csv_read(const char *path, CsvTable *out);

// Frees everything the table owns and zeroes it. Safe on a zeroed table.
void csv_free(CsvTable *table);

// Returns the index of the header column called `name`, or -1 with an error that lists the
// columns the file has.
int csv_column(const CsvTable *table, const char *name);

#endif
