// KafkaProbe: a tiny admin helper for local-kafka.sh and smoke-test.sh.
//
// Run with the Java source launcher against the broker's own jars (which
// contain kafka-clients), so nothing extra is downloaded or compiled ahead:
//
//   java -cp "$CACHE/kafka-$VERSION/libs/*" deploy/kafka/KafkaProbe.java wait 127.0.0.1:9092 90 [PID]
//   java -cp ... KafkaProbe.java create-topic 127.0.0.1:9092 NAME PARTITIONS [key=value ...]
//
// wait:          polls the broker's metadata (Admin.describeCluster) until at
//                least one broker is listed; exit 0 on success, 1 on timeout,
//                2 if the optional PID stops living meanwhile (the broker died).
// create-topic:  creates a topic with replication factor 1 and the given
//                topic configs (e.g. cleanup.policy=compact segment.ms=100);
//                exit 0 if created or already there.
//
// Used by local-kafka.sh only when kcat is not installed; the smoke test uses
// create-topic because kcat cannot set topic configs.

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;

public class KafkaProbe {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            usage();
        }
        switch (args[0]) {
            case "wait":
                System.exit(waitForBroker(args));
                break;
            case "create-topic":
                System.exit(createTopic(args));
                break;
            default:
                usage();
        }
    }

    private static void usage() {
        System.err.println("usage: KafkaProbe wait BOOTSTRAP TIMEOUT_SECONDS [PID]");
        System.err.println("       KafkaProbe create-topic BOOTSTRAP NAME PARTITIONS [key=value ...]");
        System.exit(64);
    }

    private static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "200");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        return Admin.create(p);
    }

    private static int waitForBroker(String[] args) throws InterruptedException {
        String bootstrap = args[1];
        long timeoutMs = args.length > 2 ? Long.parseLong(args[2]) * 1000L : 30_000L;
        ProcessHandle broker = args.length > 3
                ? ProcessHandle.of(Long.parseLong(args[3])).orElse(null)
                : null;
        if (args.length > 3 && broker == null) {
            return 2;
        }
        long deadline = System.currentTimeMillis() + timeoutMs;
        try (Admin a = admin(bootstrap)) {
            while (System.currentTimeMillis() < deadline) {
                if (broker != null && !broker.isAlive()) {
                    return 2;
                }
                try {
                    int n = a.describeCluster().nodes().get(3, TimeUnit.SECONDS).size();
                    if (n > 0) {
                        return 0;
                    }
                } catch (Exception e) {
                    // Not up yet: connection refused, timeout, or no brokers.
                }
                Thread.sleep(300);
            }
        }
        return 1;
    }

    private static int createTopic(String[] args) throws InterruptedException {
        if (args.length < 4) {
            usage();
        }
        Map<String, String> configs = new HashMap<>();
        for (int i = 4; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("bad topic config (want key=value): " + args[i]);
                return 64;
            }
            configs.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        NewTopic t = new NewTopic(args[2], Integer.parseInt(args[3]), (short) 1).configs(configs);
        try (Admin a = admin(args[1])) {
            a.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
            return 0;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TopicExistsException) {
                return 0;
            }
            System.err.println("create-topic " + args[2] + ": " + e.getCause());
            return 1;
        } catch (Exception e) {
            System.err.println("create-topic " + args[2] + ": " + e);
            return 1;
        }
    }
}
