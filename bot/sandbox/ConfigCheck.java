// Judges broker properties files the way a Kafka broker judges its own at start-up.
//
// Run by bot/sandbox/operator/config_check.py as `java -cp '<kafka libs>/*:<dir of this class>'
// ConfigCheck FILE...`. For each file, in order, one line on stdout:
//   ok
//   invalid<TAB><what Kafka says, on one line>[<TAB><the next problem>...]
// kafka.Kafka's start-up builds its config with KafkaConfig.fromProps(props, false): the ConfigDef
// parse (types, ranges, valid values) plus KafkaConfig's own cross-key checks. A broker whose
// properties fail here exits before it serves anything, so this is the verdict a real broker gives.
// The parse stops at the first bad key; ConfigDef.validate is asked first so that every bad key is
// named (in the same words), as Strimzi lists every error.
// Exit code 0 when every file was judged, 2 on bad usage or an unreadable file.

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.config.ConfigValue;

public final class ConfigCheck {
    private ConfigCheck() {
    }

    public static void main(String[] args) {
        if (args.length == 0) {
            System.err.println("usage: ConfigCheck FILE...");
            System.exit(2);
        }
        StringBuilder out = new StringBuilder();
        for (String path : args) {
            Properties props = new Properties();
            try (Reader reader = new InputStreamReader(new FileInputStream(path), StandardCharsets.UTF_8)) {
                props.load(reader);
            } catch (IOException e) {
                System.err.println("cannot read " + path + ": " + e.getMessage());
                System.exit(2);
            }
            out.append(verdict(props)).append('\n');
        }
        System.out.print(out);
        System.out.flush();
    }

    private static String verdict(Properties props) {
        Map<String, String> values = new LinkedHashMap<>();
        for (String key : props.stringPropertyNames()) {
            values.put(key, props.getProperty(key));
        }
        List<String> errors = new ArrayList<>();
        for (ConfigValue value : kafka.server.KafkaConfig.configDef().validate(values)) {
            if (!value.errorMessages().isEmpty()) {
                // The first says why; after a failed parse the validator adds "Invalid value null".
                errors.add(oneLine(value.errorMessages().get(0)));
            }
        }
        if (!errors.isEmpty()) {
            return "invalid\t" + String.join("\t", errors);
        }
        try {
            kafka.server.KafkaConfig.fromProps(props, false);
            return "ok";
        } catch (org.apache.kafka.common.config.ConfigException e) {
            return "invalid\t" + oneLine(e.getMessage());
        } catch (IllegalArgumentException e) {
            // KafkaConfig's cross-key checks are Scala `require`s: "requirement failed: ..."
            return "invalid\t" + oneLine(e.getMessage());
        } catch (RuntimeException e) {
            return "invalid\t" + oneLine(e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    private static String oneLine(String text) {
        return String.valueOf(text).replace('\t', ' ').replace('\r', ' ').replace('\n', ' ');
    }
}
