package org.agentmill.csvlite;

import java.util.List;

/**
 * Writes records as CSV text (RFC 4180): fields separated by the delimiter, each record ended by
 * CRLF. A field is quoted when it holds the delimiter, a double quote or a line break, and a
 * double quote inside it is written twice.
 */
public class CsvWriter {
    private final char delimiter;

    /** A writer of comma-separated values. */
    public CsvWriter() {
        this(',');
    }

    /** A writer of values separated by {@code delimiter}. */
    public CsvWriter(char delimiter) {
        if (delimiter == '"' || delimiter == '\r' || delimiter == '\n') {
            throw new IllegalArgumentException("the delimiter cannot be a quote or a line break");
        }
        this.delimiter = delimiter;
    }

    /** Every record, each ended by CRLF. */
    public String write(List<? extends List<String>> records) {
        StringBuilder out = new StringBuilder();
        for (List<String> record : records) {
            out.append(writeRecord(record)).append("\r\n");
        }
        return out.toString();
    }

    /** One record, without a line break. */
    public String writeRecord(List<String> fields) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < fields.size(); i++) {
            if (i > 0) {
                out.append(delimiter);
            }
            out.append(field(fields.get(i)));
        }
        return out.toString();
    }

    private String field(String value) {
        boolean quote = value.indexOf(delimiter) >= 0 || value.indexOf('"') >= 0
                || value.indexOf('\n') >= 0 || value.indexOf('\r') >= 0;
        if (!quote) {
            return value;
        }
        return '"' + value.replace("\"", "\"\"") + '"';
    }
}
