package org.agentmill.csvlite;

/** Input that is not CSV: a quoted field that is never closed. */
public class CsvException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int line;

    public CsvException(String message, int line) {
        super(message + " (line " + line + ")");
        this.line = line;
    }

    /** The line, counted from 1, where the malformed field starts. */
    public int line() {
        return line;
    }
}
