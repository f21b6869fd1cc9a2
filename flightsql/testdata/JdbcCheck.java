// JdbcCheck reads a Stakhanov Flight SQL server through the Apache Arrow
// Flight SQL JDBC driver, as DBeaver, Superset or Tableau would: a query,
// a longer result, DatabaseMetaData's tables and columns, a refused write,
// a refused token. Run with the Java source launcher against the driver's
// one jar (Java 17 needs java.nio opened to Arrow's memory code):
//
//   java --add-opens=java.base/java.nio=ALL-UNNAMED -cp flight-sql-jdbc-driver-V.jar \
//       flightsql/testdata/JdbcCheck.java HOST:PORT TOKEN_FILE CA_FILE
//
// The token goes in the connection's properties (token=…, as it would in
// the URL), read from a file so that it is not on a command line. Prints
// one JSON object; the Go test (TestJDBC) holds the expectations.

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String hostPort = args[0];
        String token = Files.readString(Path.of(args[1])).trim();
        String ca = args[2];
        String url = "jdbc:arrow-flight-sql://" + hostPort + "?useEncryption=true&tlsRootCerts=" + ca;
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("driver", DriverManager.getDriver(url).getClass().getName());
        try (Connection c = DriverManager.getConnection(url, props(token))) {
            try (Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT count(*) AS n, sum(i) AS total, max(s) AS last FROM t")) {
                rs.next();
                out.put("n", rs.getLong("n"));
                out.put("total", rs.getBigDecimal("total").toString());
                out.put("last", rs.getString("last"));
            }
            // a result of several batches, read in order
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT i, d FROM t ORDER BY i")) {
                long rows = 0;
                boolean inOrder = true;
                while (rs.next()) {
                    inOrder &= rs.getLong(1) == rows;
                    rows++;
                }
                out.put("rows", rows);
                out.put("in_order", inOrder);
                out.put("d_type", rs.getMetaData().getColumnTypeName(2));
            }
            DatabaseMetaData md = c.getMetaData();
            out.put("product", md.getDatabaseProductName());
            out.put("read_only", md.isReadOnly());
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, null, "%", null)) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + ":" + rs.getString("TABLE_TYPE"));
                }
            }
            out.put("tables", tables);
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "main", "t", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME"));
                }
            }
            out.put("columns", columns);
            out.put("delete", errorOf(c, "DELETE FROM t", true));
            out.put("insert", errorOf(c, "INSERT INTO t VALUES (1, 'x', DATE '2026-01-01')", false));
        }
        try (Connection c = DriverManager.getConnection(url, props(token + "x"))) {
            out.put("wrong_token", errorOf(c, "SELECT 1", false));
        } catch (SQLException e) {
            out.put("wrong_token", describe(e));
        }
        System.out.println(json(out));
    }

    static Properties props(String token) {
        Properties p = new Properties();
        p.setProperty("token", token);
        return p;
    }

    // errorOf runs sql, as an update or a query, and returns the error it
    // ends in (null if none).
    static String errorOf(Connection c, String sql, boolean update) {
        try (Statement st = c.createStatement()) {
            if (update) {
                st.executeUpdate(sql);
            } else {
                st.execute(sql);
            }
            return null;
        } catch (SQLException e) {
            return describe(e);
        }
    }

    // describe joins the messages of an exception and its causes: the
    // driver wraps the server's status.
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            sb.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage()).append(" | ");
        }
        return sb.toString();
    }

    static String json(Object o) {
        if (o == null) {
            return "null";
        }
        if (o instanceof Map<?, ?> m) {
            StringBuilder sb = new StringBuilder("{");
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (sb.length() > 1) {
                    sb.append(",");
                }
                sb.append(json(e.getKey().toString())).append(":").append(json(e.getValue()));
            }
            return sb.append("}").toString();
        }
        if (o instanceof List<?> l) {
            StringBuilder sb = new StringBuilder("[");
            for (Object e : l) {
                if (sb.length() > 1) {
                    sb.append(",");
                }
                sb.append(json(e));
            }
            return sb.append("]").toString();
        }
        if (o instanceof Number || o instanceof Boolean) {
            return o.toString();
        }
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : o.toString().toCharArray()) {
            switch (ch) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (ch < 0x20) {
                        sb.append(String.format("\\u%04x", (int) ch));
                    } else {
                        sb.append(ch);
                    }
                }
            }
        }
        return sb.append("\"").toString();
    }
}
