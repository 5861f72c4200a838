package org.agentmill.csvlite;

import java.util.ArrayList;
import java.util.List;

/**
 * Reads CSV text (RFC 4180) into records, each a list of fields.
 *
 * <p>Records end at a line feed or a carriage return and line feed; the line break after the
 * last record is optional. A field enclosed in double quotes may hold the delimiter, line breaks
 * and, written twice ({@code ""}), the double quote itself.
 */
public class CsvReader {
    private final char delimiter;

    /** A reader of comma-separated values. */
    public CsvReader() {
        this(',');
    }

    /** A reader of values separated by {@code delimiter} (a semicolon, a tab, ...). */
    public CsvReader(char delimiter) {
        if (delimiter == '"' || delimiter == '\r' || delimiter == '\n') {
            throw new IllegalArgumentException("the delimiter cannot be a quote or a line break");
        }
        this.delimiter = delimiter;
    }

    /** Every record of {@code text}; empty text has none. */
    public List<List<String>> readAll(String text) {
        List<List<String>> records = new ArrayList<>();
        List<String> record = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        boolean quoted = false;
        int line = 1;
        int quoteLine = 1;
        int n = text.length();
        for (int i = 0; i < n; i++) {
            char c = text.charAt(i);
            if (quoted) {
                if (c == '"') {
                    quoted = false;
                } else {
                    if (c == '\n') {
                        line++;
                    }
                    field.append(c);
                }
            } else if (c == '"') {
                quoted = true;
                quoteLine = line;
            } else if (c == delimiter) {
                record.add(field.toString());
                field.setLength(0);
            } else if (c == '\n' || (c == '\r' && i + 1 < n && text.charAt(i + 1) == '\n')) {
                if (c == '\r') {
                    i++;
                }
                record.add(field.toString());
                field.setLength(0);
                records.add(record);
                record = new ArrayList<>();
                line++;
            } else {
                field.append(c);
            }
        }
        if (quoted) {
            throw new CsvException("quoted field is never closed", quoteLine);
        }
        if (field.length() > 0 || !record.isEmpty()) {
            record.add(field.toString());
            records.add(record);
        }
        return records;
    }

    /** The fields of a single record (a line without its line break). */
    public List<String> readRecord(String line) {
        List<List<String>> records = readAll(line);
        if (records.size() > 1) {
            throw new IllegalArgumentException("more than one record: " + records.size());
        }
        return records.isEmpty() ? List.of("") : records.get(0);
    }
}
