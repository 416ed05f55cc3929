package dpgcn.procs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

import org.neo4j.graphdb.Transaction;
import org.neo4j.internal.kernel.api.PropertyCursor;
import org.neo4j.internal.kernel.api.Read;
import org.neo4j.internal.kernel.api.RelationshipScanCursor;
import org.neo4j.internal.kernel.api.TokenRead;
import org.neo4j.kernel.api.KernelTransaction;
import org.neo4j.kernel.impl.coreapi.InternalTransaction;
import org.neo4j.procedure.Context;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;
import org.neo4j.storageengine.api.PropertySelection;
import org.neo4j.token.api.TokenConstants;
import org.neo4j.values.storable.NumberValue;
import org.neo4j.values.storable.Value;

/**
 * Whole-graph relationship columns for the PyG export, read with the kernel's cursors in one
 * pass over the relationship store and returned as packed little-endian arrays (one Bolt byte
 * array per column and chunk) instead of one list element per value.
 *
 * <p>Same values as {@code cypher/export/get_type_columns_coalesced.cypher}: internal source
 * and target ids, {@code ts} (NaN when missing) and the weight ({@code weight}, else {@code
 * count}, else 1.0); with a window, only relationships whose {@code ts} lies in
 * [since, until) (a null bound is open; a relationship without ts is then left out).
 *
 * <p>Partitions split the work between concurrent calls: each call scans the whole store
 * (record reads are cheap) but reads the properties of, and returns, only the relationships
 * whose id modulo {@code partitions} equals {@code partition}.
 */
public final class ExportProcedures {

    @Context
    public Transaction tx;

    /** One chunk of one relationship type's columns. */
    public static final class Columns {
        public String type;
        public long count;
        public byte[] source;
        public byte[] target;
        public byte[] ts;
        public byte[] weight;

        Columns(String type, long count, byte[] source, byte[] target, byte[] ts, byte[] weight) {
            this.type = type;
            this.count = count;
            this.source = source;
            this.target = target;
            this.ts = ts;
            this.weight = weight;
        }
    }

    @Procedure(name = "dpgcn.export.relationshipColumns", mode = Mode.READ)
    @Description(
            "dpgcn.export.relationshipColumns(types, since, until, chunk, partition, partitions)"
                    + " :: (type, count, source, target, ts, weight) - relationships of the given"
                    + " types as packed little-endian columns: source/target internal ids (int64),"
                    + " ts (float64, NaN when missing), weight (float32: weight, else count, else"
                    + " 1.0); only those whose id modulo partitions is partition")
    public Stream<Columns> relationshipColumns(
            @Name("types") List<String> types,
            @Name("since") Double since,
            @Name("until") Double until,
            @Name("chunk") Long chunk,
            @Name("partition") Long partition,
            @Name("partitions") Long partitions) {
        if (types == null || types.isEmpty()) {
            return Stream.empty();
        }
        if (chunk == null || chunk < 1 || chunk > 16_777_216L) {
            throw new IllegalArgumentException("chunk must be between 1 and 16777216, got " + chunk);
        }
        if (partitions == null || partitions < 1 || partition == null || partition < 0
                || partition >= partitions) {
            throw new IllegalArgumentException(
                    "partition must be in [0, partitions) and partitions >= 1, got partition "
                            + partition + " of " + partitions);
        }
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        Scan scan = new Scan(ktx, types, since, until, chunk.intValue(), partition, partitions);
        Spliterator<Columns> split = Spliterators.spliteratorUnknownSize(scan, Spliterator.NONNULL);
        return StreamSupport.stream(split, false).onClose(scan::close);
    }

    /** Growable columns of one relationship type. */
    private static final class Buffer {
        final String type;
        long[] source;
        long[] target;
        double[] ts;
        float[] weight;
        int size;

        Buffer(String type, int capacity) {
            this.type = type;
            allocate(capacity);
        }

        void allocate(int capacity) {
            source = new long[capacity];
            target = new long[capacity];
            ts = new double[capacity];
            weight = new float[capacity];
            size = 0;
        }

        void add(long s, long t, double time, float w) {
            if (size == source.length) {
                int grown = Math.max(16, size * 2);
                source = java.util.Arrays.copyOf(source, grown);
                target = java.util.Arrays.copyOf(target, grown);
                ts = java.util.Arrays.copyOf(ts, grown);
                weight = java.util.Arrays.copyOf(weight, grown);
            }
            source[size] = s;
            target[size] = t;
            ts[size] = time;
            weight[size] = w;
            size++;
        }

        Columns drain(int nextCapacity) {
            int n = size;
            ByteBuffer s = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
            s.asLongBuffer().put(source, 0, n);
            ByteBuffer t = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
            t.asLongBuffer().put(target, 0, n);
            ByteBuffer time = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
            time.asDoubleBuffer().put(ts, 0, n);
            ByteBuffer w = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
            w.asFloatBuffer().put(weight, 0, n);
            allocate(nextCapacity);
            return new Columns(type, n, s.array(), t.array(), time.array(), w.array());
        }
    }

    /** One pass over the relationship store, yielding a chunk whenever a type's buffer fills. */
    private static final class Scan implements Iterator<Columns>, AutoCloseable {
        private final RelationshipScanCursor rels;
        private final PropertyCursor props;
        private final Map<Integer, Buffer> buffers = new HashMap<>();
        private final List<Buffer> order = new ArrayList<>();
        private final PropertySelection selection;
        private final int tsKey;
        private final int weightKey;
        private final int countKey;
        private final double since;
        private final double until;
        private final boolean windowed;
        private final int chunk;
        private final long partition;
        private final long partitions;
        private Columns next;
        private boolean scanning;
        private int flushed;
        private boolean closed;

        Scan(KernelTransaction ktx, List<String> types, Double since, Double until, int chunk,
                long partition, long partitions) {
            TokenRead tokens = ktx.tokenRead();
            this.chunk = chunk;
            this.partition = partition;
            this.partitions = partitions;
            for (String name : types) {
                int id = tokens.relationshipType(name);
                if (id != TokenConstants.NO_TOKEN && !buffers.containsKey(id)) {
                    Buffer buffer = new Buffer(name, Math.min(chunk, 65_536));
                    buffers.put(id, buffer);
                    order.add(buffer);
                }
            }
            this.tsKey = tokens.propertyKey("ts");
            this.weightKey = tokens.propertyKey("weight");
            this.countKey = tokens.propertyKey("count");
            List<Integer> keys = new ArrayList<>();
            for (int key : new int[] {tsKey, weightKey, countKey}) {
                if (key != TokenConstants.NO_TOKEN) {
                    keys.add(key);
                }
            }
            this.selection = keys.isEmpty()
                    ? PropertySelection.NO_PROPERTIES
                    : PropertySelection.selection(keys.stream().mapToInt(Integer::intValue).toArray());
            this.windowed = since != null || until != null;
            this.since = since == null ? Double.NEGATIVE_INFINITY : since;
            this.until = until == null ? Double.POSITIVE_INFINITY : until;
            this.rels = ktx.cursors().allocateRelationshipScanCursor(ktx.cursorContext(), ktx.memoryTracker());
            this.props = ktx.cursors().allocatePropertyCursor(ktx.cursorContext(), ktx.memoryTracker());
            Read read = ktx.dataRead();
            if (!buffers.isEmpty()) {
                read.allRelationshipsScan(rels);
                scanning = true;
            }
        }

        @Override
        public boolean hasNext() {
            if (next == null && !closed) {
                next = advance();
                if (next == null) {
                    close();
                }
            }
            return next != null;
        }

        @Override
        public Columns next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            Columns out = next;
            next = null;
            return out;
        }

        private Columns advance() {
            while (scanning && rels.next()) {
                Buffer buffer = buffers.get(rels.type());
                if (buffer == null
                        || (partitions > 1 && rels.relationshipReference() % partitions != partition)) {
                    continue;
                }
                double time = Double.NaN;
                double weight = Double.NaN;
                double count = Double.NaN;
                rels.properties(props, selection);
                while (props.next()) {
                    int key = props.propertyKey();
                    Value value = props.propertyValue();
                    if (!(value instanceof NumberValue number)) {
                        continue;
                    }
                    if (key == tsKey) {
                        time = number.doubleValue();
                    } else if (key == weightKey) {
                        weight = number.doubleValue();
                    } else if (key == countKey) {
                        count = number.doubleValue();
                    }
                }
                if (windowed && !(time >= since && time < until)) {
                    continue;
                }
                float w = (float) (!Double.isNaN(weight) ? weight : !Double.isNaN(count) ? count : 1.0);
                buffer.add(rels.sourceNodeReference(), rels.targetNodeReference(), time, w);
                if (buffer.size >= chunk) {
                    return buffer.drain(Math.min(chunk, 65_536));
                }
            }
            scanning = false;
            while (flushed < order.size()) {
                Buffer buffer = order.get(flushed++);
                if (buffer.size > 0) {
                    return buffer.drain(0);
                }
            }
            return null;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                scanning = false;
                rels.close();
                props.close();
            }
        }
    }
}
