/*
 * Kafka's own broker config model, read from the Kafka jars of one version (run with
 * `java -cp '<libs>/*' BrokerConfigModel.java <mode> ...`, see bot/configmodel/__init__.py).
 *
 * Modes:
 *   model <out.json>              every key of the broker ConfigDef (kafka.server.KafkaConfig.configDef()):
 *                                 type, default, validator (as data where Kafka's class is known, always
 *                                 with its own text), and how the brokers update it (DynamicBrokerConfig).
 *   check <in.tsv> <out.jsonl>    for each "key<TAB>value" line: ConfigDef.parseType + the key's validator,
 *                                 exactly what a broker does with a value; prints Kafka's message if it refuses.
 *   start <base.properties> <cases.jsonl> <out.jsonl>
 *                                 KafkaConfig.fromProps on the base config changed by each case: the
 *                                 start-time checks a broker would crash on; Kafka's message or null.
 *
 * Written against the public ConfigDef API; the validators' parameters are private fields, read by
 * reflection because Kafka offers no accessor (a field Kafka renames shows up as "custom" in the model,
 * never as a wrong range). One file for every Kafka from 3.8 to 4.x: classes that moved between versions
 * are looked up by name. Where KafkaConfig is a Scala object (3.x, 4.2), scalac writes static forwarders
 * of configDef() and fromProps() on the class kafka.server.KafkaConfig, so one call reaches both forms.
 */

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.FileInputStream;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.utils.AppInfoParser;

public class BrokerConfigModel {

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: BrokerConfigModel model <out.json> | check <in.tsv> <out.jsonl> | start <base.properties> <cases.jsonl> <out.jsonl>");
            System.exit(2);
        }
        switch (args[0]) {
            case "model" -> writeModel(Path.of(args[1]));
            case "check" -> check(Path.of(args[1]), Path.of(args[2]));
            case "start" -> start(Path.of(args[1]), Path.of(args[2]), Path.of(args[3]));
            default -> {
                System.err.println("unknown mode " + args[0]);
                System.exit(2);
            }
        }
    }

    static ConfigDef brokerConfigDef() throws Exception {
        Method method = Class.forName("kafka.server.KafkaConfig").getMethod("configDef");
        return (ConfigDef) method.invoke(null);
    }

    /** key -> "read-only" | "per-broker" | "cluster-wide", from whichever class holds it in this version. */
    @SuppressWarnings("unchecked")
    static Map<String, String> updateModes() throws Exception {
        try {
            Class<?> java = Class.forName("org.apache.kafka.server.config.DynamicBrokerConfig");
            return (Map<String, String>) java.getMethod("dynamicConfigUpdateModes").invoke(null);
        } catch (ClassNotFoundException | NoSuchMethodException e) {
            Class<?> scala = Class.forName("kafka.server.DynamicBrokerConfig$");
            Object module = scala.getField("MODULE$").get(null);
            return (Map<String, String>) scala.getMethod("dynamicConfigUpdateModes").invoke(module);
        }
    }

    static void writeModel(Path out) throws Exception {
        ConfigDef def = brokerConfigDef();
        Map<String, String> modes = updateModes();
        Map<String, Object> keys = new TreeMap<>();
        Map<String, ConfigDef.ConfigKey> configKeys = def.configKeys();
        for (Map.Entry<String, ConfigDef.ConfigKey> entry : configKeys.entrySet()) {
            ConfigDef.ConfigKey key = entry.getValue();
            Map<String, Object> item = new LinkedHashMap<>();
            item.put("type", key.type.name());
            boolean hasDefault = key.hasDefault();
            item.put("has_default", hasDefault);
            if (hasDefault && key.type != ConfigDef.Type.PASSWORD) {
                item.put("default", key.defaultValue == null ? null : ConfigDef.convertToString(key.defaultValue, key.type));
            } else {
                item.put("default", null);
            }
            item.put("validator", describe(key.validator));
            item.put("update_mode", modes.getOrDefault(key.name, "read-only"));
            item.put("internal", key.internalConfig);
            item.put("importance", key.importance == null ? null : key.importance.name());
            keys.put(key.name, item);
        }
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("kafka_version", AppInfoParser.getVersion());
        model.put("source", "kafka.server.KafkaConfig.configDef() and DynamicBrokerConfig.dynamicConfigUpdateModes()");
        model.put("keys", keys);
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        Files.writeString(out, json.writeValueAsString(model) + "\n", StandardCharsets.UTF_8);
    }

    static Object field(Object target, String name) throws Exception {
        Field field = target.getClass().getDeclaredField(name);
        field.setAccessible(true);
        return field.get(target);
    }

    static boolean hasField(Object target, String name) {
        try {
            target.getClass().getDeclaredField(name);
            return true;
        } catch (NoSuchFieldException e) {
            return false;
        }
    }

    /** A validator as data: its kind and parameters where Kafka's class is one we know, and always its text. */
    static Map<String, Object> describe(ConfigDef.Validator validator) {
        if (validator == null) {
            return null;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("text", validator.toString());
        try {
            if (validator instanceof ConfigDef.Range) {
                out.put("kind", "range");
                out.put("min", field(validator, "min"));
                out.put("max", field(validator, "max"));
            } else if (validator instanceof ConfigDef.ValidString) {
                out.put("kind", "valid_string");
                out.put("values", new ArrayList<>((Collection<?>) field(validator, "validStrings")));
            } else if (validator instanceof ConfigDef.CaseInsensitiveValidString) {
                out.put("kind", "case_insensitive_string");
                // Kafka joins this set in its own iteration order in its messages: keep that order.
                out.put("values", new ArrayList<>((Collection<?>) field(validator, "validStrings")));
            } else if (validator instanceof ConfigDef.ValidList) {
                out.put("kind", "valid_list");
                Object strings = field(validator, "validString");
                out.put("values", new ArrayList<>((Collection<?>) field(strings, "validStrings")));
                if (hasField(validator, "isEmptyAllowed")) {
                    out.put("empty_allowed", field(validator, "isEmptyAllowed"));
                    out.put("null_allowed", field(validator, "isNullAllowed"));
                } else {
                    // Kafka 3.x: ValidList only checks each entry against its strings; the checks of
                    // empty lists, duplicates and empty entries came with 4.0.
                    out.put("entries_only", true);
                }
            } else if (validator instanceof ConfigDef.ListSize) {
                out.put("kind", "list_size");
                out.put("max", field(validator, "maxSize"));
            } else if (validator instanceof ConfigDef.NonEmptyStringWithoutControlChars) {
                out.put("kind", "non_empty_without_control_chars");
            } else if (validator instanceof ConfigDef.NonEmptyString) {
                out.put("kind", "non_empty_string");
            } else if (validator instanceof ConfigDef.NonNullValidator) {
                out.put("kind", "non_null");
            } else if (validator instanceof ConfigDef.CompositeValidator) {
                out.put("kind", "composite");
                List<Object> parts = new ArrayList<>();
                for (Object part : (Collection<?>) field(validator, "validators")) {
                    parts.add(describe((ConfigDef.Validator) part));
                }
                out.put("validators", parts);
            } else {
                out.put("kind", "custom");
                out.put("class", validator.getClass().getName());
            }
        } catch (Exception e) {
            out.clear();
            out.put("text", validator.toString());
            out.put("kind", "custom");
            out.put("class", validator.getClass().getName());
            out.put("unreadable", e.toString());
        }
        return out;
    }

    static void check(Path in, Path out) throws Exception {
        ConfigDef def = brokerConfigDef();
        Map<String, ConfigDef.ConfigKey> keys = def.configKeys();
        ObjectMapper json = new ObjectMapper();
        StringBuilder lines = new StringBuilder();
        for (String line : Files.readAllLines(in, StandardCharsets.UTF_8)) {
            if (line.isEmpty()) {
                continue;
            }
            int tab = line.indexOf('\t');
            String name = line.substring(0, tab);
            String value = line.substring(tab + 1);
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("key", name);
            result.put("value", value);
            ConfigDef.ConfigKey key = keys.get(name);
            if (key == null) {
                result.put("error", "unknown key");
            } else {
                try {
                    Object parsed = ConfigDef.parseType(name, value, key.type);
                    if (key.validator != null) {
                        key.validator.ensureValid(name, parsed);
                    }
                    result.put("error", null);
                    result.put("parsed", parsed == null ? null : String.valueOf(parsed));
                } catch (Exception e) {
                    result.put("error", e.getMessage());
                }
            }
            lines.append(json.writeValueAsString(result)).append('\n');
        }
        Files.writeString(out, lines.toString(), StandardCharsets.UTF_8);
    }

    /** Each line of {@code cases} is a JSON object of keys to add to (or, with a null value, remove from)
     *  the base properties; the verdict of KafkaConfig.fromProps on the result is one JSON line of {@code out}. */
    @SuppressWarnings("unchecked")
    static void start(Path base, Path cases, Path out) throws Exception {
        Properties baseProps = new Properties();
        try (InputStream stream = new FileInputStream(base.toFile())) {
            baseProps.load(stream);
        }
        ObjectMapper json = new ObjectMapper();
        Method fromProps = Class.forName("kafka.server.KafkaConfig").getMethod("fromProps", Properties.class);
        StringBuilder lines = new StringBuilder();
        for (String line : Files.readAllLines(cases, StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            Map<String, Object> overrides = json.readValue(line, Map.class);
            Properties props = new Properties();
            props.putAll(baseProps);
            for (Map.Entry<String, Object> entry : overrides.entrySet()) {
                if (entry.getValue() == null) {
                    props.remove(entry.getKey());
                } else {
                    props.setProperty(entry.getKey(), String.valueOf(entry.getValue()));
                }
            }
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("overrides", overrides);
            try {
                fromProps.invoke(null, props);
                result.put("error", null);
            } catch (java.lang.reflect.InvocationTargetException e) {
                Throwable cause = e.getCause();
                result.put("error", cause.getClass().getSimpleName() + ": " + cause.getMessage());
            }
            lines.append(json.writeValueAsString(result)).append('\n');
        }
        Files.writeString(out, lines.toString(), StandardCharsets.UTF_8);
    }
}
