package org.agentmill.csvlite;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.List;
import org.junit.Test;

public class CsvReaderTest {
    private final CsvReader reader = new CsvReader();

    @Test
    public void readsFieldsOfARecord() {
        assertEquals(List.of("a", "b", "c"), reader.readRecord("a,b,c"));
    }

    @Test
    public void readsRecordsEndedByLfOrCrlf() {
        assertEquals(List.of(List.of("a", "b"), List.of("c", "d"), List.of("e")), reader.readAll("a,b\nc,d\r\ne"));
    }

    @Test
    public void keepsEmptyFields() {
        assertEquals(List.of("a", "", "c", ""), reader.readRecord("a,,c,"));
    }

    @Test
    public void readsAnEmptyQuotedFieldAsEmpty() {
        assertEquals(List.of("a", "", "b"), reader.readRecord("a,\"\",b"));
    }

    @Test
    public void quotedFieldsHoldDelimitersAndLineBreaks() {
        assertEquals(List.of(List.of("x, y", "line 1\nline 2"), List.of("z")),
                reader.readAll("\"x, y\",\"line 1\nline 2\"\r\nz\r\n"));
    }

    @Test
    public void readsOtherDelimiters() {
        assertEquals(List.of("a", "b,c", "d"), new CsvReader(';').readRecord("a;b,c;\"d\""));
    }

    @Test
    public void rejectsAQuotedFieldThatIsNeverClosed() {
        CsvException e = assertThrows(CsvException.class, () -> reader.readAll("a,b\nc,\"d\ne\n"));
        assertEquals(2, e.line());
    }
}
