package org.agentmill.csvlite;

import static org.junit.Assert.assertEquals;

import java.util.List;
import org.junit.Test;

public class CsvWriterTest {
    private final CsvWriter writer = new CsvWriter();

    @Test
    public void writesPlainFieldsAsTheyAre() {
        assertEquals("a,b,,c", writer.writeRecord(List.of("a", "b", "", "c")));
    }

    @Test
    public void endsEveryRecordWithCrlf() {
        assertEquals("a,b\r\nc\r\n", writer.write(List.of(List.of("a", "b"), List.of("c"))));
    }

    @Test
    public void quotesFieldsHoldingTheDelimiterOrLineBreaks() {
        assertEquals("\"x, y\",\"1\n2\",\"3\r\"", writer.writeRecord(List.of("x, y", "1\n2", "3\r")));
    }

    @Test
    public void writesQuotesInsideFieldsTwice() {
        assertEquals("\"say \"\"hi\"\"\"", writer.writeRecord(List.of("say \"hi\"")));
    }

    @Test
    public void quotesOnlyForItsOwnDelimiter() {
        assertEquals("a,b;\"c;d\"", new CsvWriter(';').writeRecord(List.of("a,b", "c;d")));
    }
}
