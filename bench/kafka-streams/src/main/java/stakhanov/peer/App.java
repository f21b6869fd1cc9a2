package stakhanov.peer;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.state.Stores;

/**
 * The benchmark peer: {@code run} processes an input topic of shift events from the beginning
 * with Kafka Streams until every input offset is processed and committed, and prints events/s;
 * {@code dump} writes the fields of a JSON topic (the peer's output or alerts) as CSV, for
 * comparing results.
 */
public final class App {
    public static void main(String[] args) throws Exception {
        if (args.length == 0) usage();
        Map<String, String> f = flags(args);
        switch (args[0]) {
            case "run" -> System.exit(run(f));
            case "dump" -> dump(f);
            default -> usage();
        }
    }

    private static void usage() {
        System.err.println("""
                usage: stakhanov-kafka-streams run --brokers B --input TOPIC [--output TOPIC] [--alerts TOPIC]
                           [--app-id ID] [--state-dir DIR] [--threads N] [--guarantee exactly_once_v2|at_least_once]
                           [--progress-seconds S] [--timeout-seconds S]
                       stakhanov-kafka-streams dump --brokers B --topic TOPIC --out FILE.csv --fields a,b,c""");
        System.exit(64);
    }

    private static Map<String, String> flags(String[] args) {
        Map<String, String> m = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || i + 1 >= args.length) usage();
            m.put(a.substring(2), args[++i]);
        }
        return m;
    }

    private static String need(Map<String, String> f, String k) {
        String v = f.get(k);
        if (v == null) {
            System.err.println("missing --" + k);
            usage();
        }
        return v;
    }

    static Topology topology(String input, String output, String alerts) {
        Topology t = new Topology();
        t.addSource("input", Serdes.ByteArray().deserializer(), Serdes.ByteArray().deserializer(), input);
        t.addProcessor("rules", RulesProcessor::new, "input");
        // Both stores persistent (RocksDB) and changelogged, as a user deploys them. The windows
        // store is cached (the record cache folds a group's writes between commits into one
        // changelog record); the dedup store is not: a cached window store copies the cache's key
        // range into a TreeSet on every fetch, which halved the throughput.
        t.addStateStore(Stores.keyValueStoreBuilder(
                        Stores.persistentKeyValueStore(RulesProcessor.WINDOWS), Serdes.String(), Serdes.ByteArray())
                .withCachingEnabled(), "rules");
        t.addStateStore(Stores.windowStoreBuilder(
                        Stores.persistentWindowStore(RulesProcessor.DEDUP,
                                Duration.ofSeconds(RulesProcessor.RETENTION), Duration.ofMillis(1), false),
                        Serdes.String(), Serdes.Long())
                .withCachingDisabled(), "rules");
        t.addSink(RulesProcessor.OUT_SINK, output, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "rules");
        t.addSink(RulesProcessor.ALERTS_SINK, alerts, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "rules");
        return t;
    }

    static int run(Map<String, String> f) throws Exception {
        String brokers = need(f, "brokers"), input = need(f, "input");
        String output = f.getOrDefault("output", input + "-peer-out");
        String alerts = f.getOrDefault("alerts", input + "-peer-alerts");
        String appId = f.getOrDefault("app-id", "stakhanov-peer-" + Long.toString(System.currentTimeMillis(), 36));
        String guarantee = f.getOrDefault("guarantee", StreamsConfig.EXACTLY_ONCE_V2);
        int threads = Integer.parseInt(f.getOrDefault("threads", "2"));
        long progressEvery = Long.parseLong(f.getOrDefault("progress-seconds", "10")) * 1_000_000_000L;
        long timeout = Long.parseLong(f.getOrDefault("timeout-seconds", "1800")) * 1_000_000_000L;
        Path stateDir = f.containsKey("state-dir") ? Path.of(f.get("state-dir")) : Files.createTempDirectory("stakhanov-peer-");

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        try (Admin admin = Admin.create(ap)) {
            var desc = admin.describeTopics(List.of(input)).allTopicNames().get().get(input);
            int partitions = desc.partitions().size();
            Map<TopicPartition, OffsetSpec> earliest = new HashMap<>(), latest = new HashMap<>();
            for (var p : desc.partitions()) {
                earliest.put(new TopicPartition(input, p.partition()), OffsetSpec.earliest());
                latest.put(new TopicPartition(input, p.partition()), OffsetSpec.latest());
            }
            Map<TopicPartition, Long> end = new HashMap<>();
            admin.listOffsets(latest).all().get().forEach((tp, r) -> end.put(tp, r.offset()));
            long events = 0;
            for (var e : admin.listOffsets(earliest).all().get().entrySet()) events += end.get(e.getKey()) - e.getValue().offset();
            for (String topic : List.of(output, alerts)) {
                try {
                    admin.createTopics(List.of(new NewTopic(topic, Optional.of(partitions), Optional.empty()))).all().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) throw e;
                }
            }
            System.err.printf("kafka-streams: %s, %d partitions, %d events; %s, %d stream thread(s), app %s%n",
                    input, partitions, events, guarantee, threads, appId);

            Properties p = new Properties();
            p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
            p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
            p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
            p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
            p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
            p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
            AtomicReference<Throwable> failure = new AtomicReference<>();
            KafkaStreams streams = new KafkaStreams(topology(input, output, alerts), p);
            streams.setUncaughtExceptionHandler(e -> {
                failure.compareAndSet(null, e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            long started = System.nanoTime();
            streams.start();
            int rc = 0;
            try {
                long lastReport = started, doneAt = 0;
                while (doneAt == 0) {
                    Thread.sleep(50);
                    long now = System.nanoTime();
                    if (failure.get() != null || streams.state() == KafkaStreams.State.ERROR
                            || streams.state() == KafkaStreams.State.NOT_RUNNING) {
                        System.err.println("kafka-streams: stopped: " + failure.get());
                        return 1;
                    }
                    if (now - started > timeout) {
                        System.err.println("kafka-streams: timed out");
                        return 1;
                    }
                    Map<TopicPartition, OffsetAndMetadata> committed =
                            admin.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get();
                    boolean all = true;
                    long done = 0;
                    for (var e : end.entrySet()) {
                        OffsetAndMetadata c = committed.get(e.getKey());
                        long at = c == null ? 0 : c.offset();
                        done += Math.min(at, e.getValue());
                        if (at < e.getValue()) all = false;
                    }
                    if (all && Stats.firstNanos() != 0) {
                        doneAt = now;
                    } else if (now - lastReport >= progressEvery) {
                        System.err.printf("  processed %d, committed %d of %d%n", Stats.MESSAGES.sum(), done, events);
                        lastReport = now;
                    }
                }
                double secs = (doneAt - Stats.firstNanos()) / 1e9;
                System.err.printf("  %d events in %.2f s (first record to last committed): %.0f events/s%n", events, secs, events / secs);
                System.out.printf(Locale.ROOT,
                        "{\"events\":%d,\"seconds\":%.3f,\"events_per_s\":%.0f,\"guarantee\":\"%s\",\"threads\":%d,"
                                + "\"messages\":%d,\"accepted\":%d,\"late\":%d,\"duplicates\":%d,\"malformed\":%d,"
                                + "\"record_shift\":%d,\"suspect_record\":%d,\"output\":\"%s\",\"alerts\":\"%s\"}%n",
                        events, secs, events / secs, guarantee, threads, Stats.MESSAGES.sum(), Stats.ACCEPTED.sum(),
                        Stats.LATE.sum(), Stats.DUPLICATES.sum(), Stats.MALFORMED.sum(), Stats.RECORDS.sum(),
                        Stats.SUSPECTS.sum(), output, alerts);
            } finally {
                streams.close(Duration.ofSeconds(60));
                streams.cleanUp(); // local state only; the changelogs stay in Kafka
                if (!f.containsKey("state-dir")) deleteTree(stateDir);
            }
            return rc;
        }
    }

    /** Writes the listed top-level fields of every committed JSON record of a topic as CSV. */
    static void dump(Map<String, String> f) throws IOException {
        String brokers = need(f, "brokers"), topic = need(f, "topic");
        List<String> fields = List.of(need(f, "fields").split(","));
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000);
        JsonFactory json = new JsonFactory();
        long n = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
                BufferedWriter out = Files.newBufferedWriter(Path.of(need(f, "out")), StandardCharsets.UTF_8)) {
            List<TopicPartition> parts = c.partitionsFor(topic).stream()
                    .map(i -> new TopicPartition(topic, i.partition())).collect(Collectors.toList());
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts); // the last stable offsets
            out.write(String.join(",", fields));
            out.newLine();
            List<String> row = new ArrayList<>();
            while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    Map<String, String> v = new HashMap<>();
                    try (JsonParser jp = json.createParser(r.value())) {
                        jp.nextToken();
                        while (jp.nextToken() == JsonToken.FIELD_NAME) {
                            String name = jp.currentName();
                            JsonToken t = jp.nextToken();
                            v.put(name, t == JsonToken.VALUE_NULL ? "" : jp.getText());
                        }
                    }
                    row.clear();
                    for (String k : fields) row.add(csv(v.getOrDefault(k, "")));
                    out.write(String.join(",", row));
                    out.newLine();
                    n++;
                }
            }
        }
        System.err.printf("dump: %d records of %s%n", n, topic);
    }

    private static String csv(String s) {
        if (s.indexOf(',') < 0 && s.indexOf('"') < 0 && s.indexOf('\n') < 0) return s;
        return '"' + s.replace("\"", "\"\"") + '"';
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
        }
    }
}
