package dpgcn.procs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.LongBuffer;
import java.util.stream.Stream;

import org.neo4j.exceptions.KernelException;
import org.neo4j.graphdb.Transaction;
import org.neo4j.internal.kernel.api.NodeCursor;
import org.neo4j.internal.kernel.api.Read;
import org.neo4j.internal.kernel.api.TokenRead;
import org.neo4j.internal.kernel.api.Write;
import org.neo4j.kernel.api.KernelTransaction;
import org.neo4j.kernel.impl.coreapi.InternalTransaction;
import org.neo4j.procedure.Context;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;
import org.neo4j.token.api.TokenConstants;
import org.neo4j.values.storable.Values;

/**
 * The loader's CREATE fast path for one batch of relationships, sent as packed little-endian
 * columns (one Bolt byte array per column instead of one list per row) and written with the
 * kernel's write operations in the caller's transaction.
 *
 * <p>Same effect as {@code cypher/ingest/create_interactions.cypher} and its siblings: an
 * endpoint that is not a node with the expected label is skipped (the row is not written and
 * not counted); {@code count} is stored as an integer, {@code ts} and {@code weight} as
 * floats; a missing value (the minimum int64 for count, NaN for the others) or a column
 * given as null leaves the property unset.
 */
public final class IngestProcedures {

    /** The minimum int64: "no count" in the count column. */
    public static final long NO_COUNT = Long.MIN_VALUE;

    @Context
    public Transaction tx;

    /** The number of relationships created. */
    public static final class Written {
        public long written;

        Written(long written) {
            this.written = written;
        }
    }

    @Procedure(name = "dpgcn.ingest.createRelationships", mode = Mode.WRITE)
    @Description(
            "dpgcn.ingest.createRelationships(type, sourceLabel, targetLabel, source, target,"
                    + " count, ts, weight) :: (written) - create one relationship per row from"
                    + " packed little-endian columns: source/target internal node ids (int64),"
                    + " count (int64, min int64 = unset), ts and weight (float64, NaN = unset);"
                    + " a null column sets no property; rows whose endpoint is not a node with"
                    + " the label are skipped")
    public Stream<Written> createRelationships(
            @Name("type") String type,
            @Name("sourceLabel") String sourceLabel,
            @Name("targetLabel") String targetLabel,
            // The columns are declared as ANY, not BYTEARRAY: Cypher coerces an argument
            // declared BYTEARRAY through a list of one boxed value per byte (400,000 objects
            // for a 10,000-row batch), while an ANY argument arrives as the byte[] it is.
            @Name("source") Object sourceColumn,
            @Name("target") Object targetColumn,
            @Name("count") Object countColumn,
            @Name("ts") Object tsColumn,
            @Name("weight") Object weightColumn)
            throws KernelException {
        byte[] source = bytes("source", sourceColumn);
        byte[] target = bytes("target", targetColumn);
        byte[] count = bytes("count", countColumn);
        byte[] ts = bytes("ts", tsColumn);
        byte[] weight = bytes("weight", weightColumn);
        if (source == null || target == null || source.length % 8 != 0) {
            throw new IllegalArgumentException("source and target must be int64 columns");
        }
        int n = source.length / 8;
        check("target", target, n);
        check("count", count, n);
        check("ts", ts, n);
        check("weight", weight, n);
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        TokenRead tokens = ktx.tokenRead();
        int sourceLabelId = tokens.nodeLabel(sourceLabel);
        int targetLabelId = tokens.nodeLabel(targetLabel);
        if (n == 0 || sourceLabelId == TokenConstants.NO_TOKEN
                || targetLabelId == TokenConstants.NO_TOKEN) {
            return Stream.of(new Written(0));
        }
        int typeId = ktx.tokenWrite().relationshipTypeGetOrCreateForName(type);
        int countKey = count == null ? -1 : ktx.tokenWrite().propertyKeyGetOrCreateForName("count");
        int tsKey = ts == null ? -1 : ktx.tokenWrite().propertyKeyGetOrCreateForName("ts");
        int weightKey = weight == null ? -1 : ktx.tokenWrite().propertyKeyGetOrCreateForName("weight");
        LongBuffer s = longs(source);
        LongBuffer t = longs(target);
        LongBuffer c = count == null ? null : longs(count);
        DoubleBuffer time = ts == null ? null : doubles(ts);
        DoubleBuffer w = weight == null ? null : doubles(weight);
        Read read = ktx.dataRead();
        Write write = ktx.dataWrite();
        long written = 0;
        try (NodeCursor nodes = ktx.cursors().allocateNodeCursor(ktx.cursorContext(), ktx.memoryTracker())) {
            for (int i = 0; i < n; i++) {
                long a = s.get(i);
                long b = t.get(i);
                if (!isNode(read, nodes, a, sourceLabelId) || !isNode(read, nodes, b, targetLabelId)) {
                    continue;
                }
                long rel = write.relationshipCreate(a, typeId, b);
                if (c != null && c.get(i) != NO_COUNT) {
                    write.relationshipSetProperty(rel, countKey, Values.longValue(c.get(i)));
                }
                if (time != null && !Double.isNaN(time.get(i))) {
                    write.relationshipSetProperty(rel, tsKey, Values.doubleValue(time.get(i)));
                }
                if (w != null && !Double.isNaN(w.get(i))) {
                    write.relationshipSetProperty(rel, weightKey, Values.doubleValue(w.get(i)));
                }
                written++;
            }
        }
        return Stream.of(new Written(written));
    }

    private static boolean isNode(Read read, NodeCursor nodes, long id, int label) {
        if (id < 0) {
            return false;
        }
        read.singleNode(id, nodes);
        return nodes.next() && nodes.hasLabel(label);
    }

    private static byte[] bytes(String name, Object column) {
        if (column == null || column instanceof byte[]) {
            return (byte[]) column;
        }
        throw new IllegalArgumentException(
                name + " must be a byte array (a packed column), got " + column.getClass().getSimpleName());
    }

    private static void check(String name, byte[] column, int n) {
        if (column != null && column.length != n * 8) {
            throw new IllegalArgumentException(
                    name + " must hold " + n + " 8-byte values like source, got " + column.length + " bytes");
        }
    }

    private static LongBuffer longs(byte[] bytes) {
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
    }

    private static DoubleBuffer doubles(byte[] bytes) {
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
    }
}
