package io.bazelcache.config;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * Builds a {@link Config} from command-line flags, environment variables and an optional YAML
 * file, all described by {@link Options#ALL}. Precedence: flags over environment over YAML over
 * defaults.
 *
 * <pre>{@code
 * Config config;
 * try {
 *   config = ConfigLoader.load(args, System.getenv());
 * } catch (ConfigException e) {
 *   System.err.println("bazel-cache: " + e.getMessage());
 *   System.exit(2);
 * }
 * if (config.helpRequested()) { System.out.print(ConfigLoader.helpText()); System.exit(0); }
 * }</pre>
 */
public final class ConfigLoader {
  /**
   * Values Kubernetes injects for Services ("service links"): a Service named foo-bar gives every
   * pod FOO_BAR_PORT=tcp://10.0.0.1:8080 (among others), which collides with our *_PORT variables.
   */
  private static final Pattern SERVICE_LINK = Pattern.compile("^(tcp|udp|sctp)://\\S+:\\d+$");

  private static final Pattern URL_SCHEME = Pattern.compile("^([A-Za-z][A-Za-z0-9+.-]*)://.+");

  private ConfigLoader() {}

  /** The outcome of {@link #parse}: the configuration plus picocli's parse result. */
  public record Loaded(Config config, ParseResult parseResult) {}

  /**
   * Loads and validates the configuration, refusing options that are {@link Status#NOT_YET}
   * supported but set. If {@code --help} is given, returns a default configuration whose {@link
   * Config#helpRequested()} is true, without reading the YAML file or validating anything.
   */
  public static Config load(String[] args, Map<String, String> env) throws ConfigException {
    return parse(commandSpec(), args, env, true).config();
  }

  /**
   * Like {@link #load(String[], Map)}, but with {@code enforceSupport == false} options that are
   * not supported yet are parsed and validated and then accepted (useful for checks and tests).
   */
  public static Config load(String[] args, Map<String, String> env, boolean enforceSupport)
      throws ConfigException {
    return parse(commandSpec(), args, env, enforceSupport).config();
  }

  /**
   * Parses with a caller-supplied command spec, normally one from {@link #commandSpec()} to which
   * subcommands were added. Configuration flags are read from the root command and from any
   * matched subcommand that declares them; the returned parse result gives access to the rest.
   */
  public static Loaded parse(
      CommandSpec spec, String[] args, Map<String, String> env, boolean enforceSupport)
      throws ConfigException {
    CommandLine commandLine = new CommandLine(spec);
    ParseResult parseResult;
    try {
      parseResult = commandLine.parseArgs(args);
    } catch (ParameterException e) {
      throw commandLineError(e);
    }
    boolean help = false;
    for (ParseResult pr = parseResult; pr != null; pr = pr.subcommand()) {
      help |= pr.isUsageHelpRequested() || pr.isVersionHelpRequested();
    }
    if (help) {
      return new Loaded(new Resolver(env == null ? Map.of() : env).defaults(), parseResult);
    }
    Config config = read(parseResult, env).resolve(enforceSupport);
    return new Loaded(config, parseResult);
  }

  /** Reads every source: flags from the parse result, then the environment, then the YAML file. */
  private static Resolver read(ParseResult parseResult, Map<String, String> env) throws ConfigException {
    Resolver resolver = new Resolver(env == null ? Map.of() : env);
    resolver.readFlags(parseResult);
    resolver.readEnv();
    resolver.readYaml();
    return resolver;
  }

  /**
   * A new picocli command spec for {@code bazel-cache} with every flag from the option table
   * (preferred {@code --name} plus Go-style {@code -name}), all taking their value as text that
   * {@link Option#parseText} converts. Add subcommands to it and pass it to {@link #parse}.
   */
  public static CommandSpec commandSpec() {
    CommandSpec spec = CommandSpec.create().name("bazel-cache");
    spec.usageMessage().description("A remote build cache for Bazel, configured like bazel-remote.");
    spec.parser()
        .expandAtFiles(false)
        .overwrittenOptionsAllowed(true)
        .posixClusteredShortOptionsAllowed(false)
        .abbreviatedOptionsAllowed(false);
    spec.addOption(
        OptionSpec.builder("-h", "--help", "-help")
            .usageHelp(true)
            .description("Show this help and exit.")
            .build());
    for (Option o : Options.ALL) {
      if (o.flags().isEmpty()) {
        continue;
      }
      List<String> names = new ArrayList<>();
      for (String f : o.flags()) {
        names.add(f);
        if (f.startsWith("--")) {
          names.add(f.substring(1));
        }
      }
      OptionSpec.Builder b =
          OptionSpec.builder(names.toArray(String[]::new))
              .type(String.class)
              .paramLabel("VALUE")
              .descriptionKey(o.key())
              .description(o.help());
      if (o.type() == OptionType.BOOL) {
        b.arity("0..1").fallbackValue("true");
      } else {
        b.arity("1");
      }
      spec.addOption(b.build());
    }
    return spec;
  }

  /** The {@code --help} text, generated from the option table. */
  public static String helpText() {
    return ConfigDocs.helpText();
  }

  /** Values and their sources after merging, before cross-field validation (for tests). */
  record Merged(Map<String, Object> values, Map<String, String> sources) {}

  static Merged merge(String[] args, Map<String, String> env) throws ConfigException {
    ParseResult parseResult;
    try {
      parseResult = new CommandLine(commandSpec()).parseArgs(args);
    } catch (ParameterException e) {
      throw commandLineError(e);
    }
    return read(parseResult, env).merge();
  }

  private static ConfigException commandLineError(ParameterException e) {
    if (e instanceof CommandLine.UnmatchedArgumentException u && !u.getUnmatched().isEmpty()) {
      String arg = u.getUnmatched().get(0);
      if (arg.startsWith("-")) {
        String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
        List<String> flags = new ArrayList<>();
        for (Option o : Options.ALL) {
          flags.addAll(o.flags());
        }
        String bare = name.replaceFirst("^-+", "");
        String best = closest(bare, flags.stream().map(f -> f.replaceFirst("^-+", "")).toList());
        String hint = best == null ? "" : " (did you mean --" + best + "?)";
        return new ConfigException(name, name + ": unknown option" + hint);
      }
      return new ConfigException(arg, arg + ": unexpected argument; options are written --name=value");
    }
    String key = keyOf(e);
    String message = e.getMessage();
    if (key != null) {
      message = key + ": " + message.substring(0, 1).toLowerCase() + message.substring(1);
    }
    return new ConfigException(key == null ? "command line" : key, message);
  }

  private static String keyOf(ParameterException e) {
    if (e.getArgSpec() instanceof OptionSpec os && os.descriptionKey() != null) {
      return os.descriptionKey();
    }
    if (e instanceof CommandLine.MissingParameterException m && !m.getMissing().isEmpty()
        && m.getMissing().get(0) instanceof OptionSpec os && os.descriptionKey() != null) {
      return os.descriptionKey();
    }
    return null;
  }

  /** Collects values from each source and resolves them into a Config. */
  private static final class Resolver {
    private final Map<String, String> env;
    private final Map<String, Object> flagValues = new HashMap<>();
    private final Map<String, String> flagSources = new HashMap<>();
    private final Map<String, Object> envValues = new HashMap<>();
    private final Map<String, String> envSources = new HashMap<>();
    private final Map<String, Object> yamlValues = new HashMap<>();
    private final Set<String> yamlBlocks = new LinkedHashSet<>();
    private final Map<String, String> serviceLinks = new LinkedHashMap<>();
    private Path configFile;

    Resolver(Map<String, String> env) {
      this.env = env;
    }

    Config defaults() {
      Map<String, Object> values = new LinkedHashMap<>();
      for (Option o : Options.ALL) {
        values.put(o.key(), o.defaultValue());
      }
      return new Config(values, Map.of(), defaultDir(), (ListenAddress) values.get("http_address"),
          grpcDefault(), Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(), true,
          List.of());
    }

    @SuppressWarnings("unchecked")
    private static Optional<ListenAddress> grpcDefault() {
      return (Optional<ListenAddress>) Options.require("grpc_address").defaultValue();
    }

    void readFlags(ParseResult parseResult) throws ConfigException {
      for (ParseResult pr = parseResult; pr != null; pr = pr.subcommand()) {
        for (OptionSpec spec : pr.matchedOptions()) {
          Option o = spec.descriptionKey() == null ? null : Options.byKey(spec.descriptionKey());
          if (o == null || spec.usageHelp()) {
            continue;
          }
          String text = spec.getValue();
          String source = spec.longestName();
          flagValues.put(o.key(), convert(o, text, source));
          flagSources.put(o.key(), source);
        }
      }
    }

    void readEnv() throws ConfigException {
      for (Option o : Options.ALL) {
        for (String name : o.envVars()) {
          String text = env.get(name);
          if (text == null || text.isEmpty()) {
            continue;
          }
          if (name.endsWith("_PORT") && SERVICE_LINK.matcher(text.strip()).matches()) {
            serviceLinks.put(o.key(), name);
            break; // judged in checkServiceLinks, once we know whether the value matters
          }
          envValues.put(o.key(), convert(o, text, name));
          envSources.put(o.key(), name);
          break;
        }
      }
    }

    /**
     * A service-link value in one of our *_PORT variables is harmless when a flag overrides it or
     * when the address it would feed is given anyway (the deployment's YAML sets http_address):
     * then it is skipped with a warning. Otherwise it is an error that names the Service.
     */
    private List<String> checkServiceLinks() throws ConfigException {
      List<String> warnings = new ArrayList<>();
      for (Map.Entry<String, String> e : serviceLinks.entrySet()) {
        String key = e.getKey();
        String name = e.getValue();
        String text = env.get(name).strip();
        String service =
            name.substring(0, name.length() - "_PORT".length()).toLowerCase(Locale.ROOT).replace('_', '-');
        String explanation = name + "=" + text + " was injected by Kubernetes for a Service named \""
            + service + "\"";
        String address = switch (key) {
          case "port" -> "http_address";
          case "grpc_port" -> "grpc_address";
          case "profile_port" -> "profile_address";
          default -> null;
        };
        boolean overridden = flagValues.containsKey(key);
        boolean irrelevant = address != null && (flagValues.containsKey(address)
            || envValues.containsKey(address) || yamlValues.containsKey(address));
        if (overridden || irrelevant) {
          warnings.add("ignoring environment variable " + explanation + " (" + key + " is "
              + (overridden ? "set by a flag" : "not used because " + address + " is set") + ")");
          continue;
        }
        throw new ConfigException(key, key + ": environment variable " + explanation
            + ", which collides with bazel-cache's " + name + " setting; rename the Service (for"
            + " example to bazel-cache), set enableServiceLinks: false in the pod spec, or set "
            + (address != null ? address : key) + " explicitly");
      }
      return warnings;
    }

    void readYaml() throws ConfigException {
      Object file = flagValues.containsKey(Options.CONFIG_FILE)
          ? flagValues.get(Options.CONFIG_FILE)
          : envValues.get(Options.CONFIG_FILE);
      if (file == null || ((String) file).isBlank()) {
        return;
      }
      configFile = Path.of((String) file);
      String where = configFile.toString();
      String text;
      try {
        text = Files.readString(configFile);
      } catch (NoSuchFileException e) {
        throw new ConfigException(Options.CONFIG_FILE,
            Options.CONFIG_FILE + ": cannot read " + where + ": no such file");
      } catch (IOException e) {
        throw new ConfigException(Options.CONFIG_FILE,
            Options.CONFIG_FILE + ": cannot read " + where + ": " + e.getMessage());
      }
      ObjectMapper mapper = new ObjectMapper(
          YAMLFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build());
      JsonNode root;
      try {
        root = mapper.readTree(text);
      } catch (JsonProcessingException e) {
        JsonLocation loc = e.getLocation();
        String at = loc == null ? "" : " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
        String reason = e.getOriginalMessage().lines().findFirst().orElse("syntax error").strip()
            .replace("Duplicate field", "duplicate key");
        throw new ConfigException(Options.CONFIG_FILE,
            Options.CONFIG_FILE + ": invalid YAML in " + where + at + ": " + reason);
      }
      if (root == null || root.isMissingNode() || root.isNull()) {
        return;
      }
      if (!root.isObject()) {
        throw new ConfigException(Options.CONFIG_FILE, Options.CONFIG_FILE + ": " + where
            + " must contain a mapping of keys to values, got " + describe(root));
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        String name = field.getKey();
        JsonNode node = field.getValue();
        if (Options.BLOCKS.contains(name)) {
          readBlock(name, node, where);
          continue;
        }
        Option o = Options.byKey(name);
        if (o == null || o.block() != null || !o.inYaml()) {
          throw unknownKey(name, o != null && !o.inYaml()
              ? "can only be given as a flag or environment variable" : null, where, null);
        }
        putYaml(o, node, where);
      }
    }

    private void readBlock(String block, JsonNode node, String where) throws ConfigException {
      if (node == null || node.isNull() || (node.isTextual() && node.asText().isEmpty())) {
        return;
      }
      if (!node.isObject()) {
        throw new ConfigException(block, block + ": expected a mapping of " + block
            + " settings, got " + describe(node) + " (in " + where + ")");
      }
      yamlBlocks.add(block);
      for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        String key = block + "." + field.getKey();
        Option o = Options.byKey(key);
        if (o == null || field.getKey().contains(".")) {
          throw unknownKey(key, null, where, block);
        }
        putYaml(o, field.getValue(), where);
      }
    }

    private ConfigException unknownKey(String key, String reason, String where, String block) {
      StringBuilder msg = new StringBuilder(key).append(": ");
      msg.append(reason != null ? reason + ", not in the YAML file" : "unknown key");
      msg.append(" (in ").append(where).append(")");
      String suggestion = suggest(key, block);
      if (reason == null && suggestion != null) {
        msg.append("; did you mean ").append(suggestion).append("?");
      }
      return new ConfigException(key, msg.toString());
    }

    /** The closest known YAML key at the same level, if it is close enough to be a typo. */
    private static String suggest(String key, String block) {
      if (block == null && key.equals("s3")) {
        return "s3_proxy";
      }
      if (block == null && key.equals("azblob")) {
        return "azblob_proxy";
      }
      List<String> candidates = new ArrayList<>();
      for (Option o : Options.ALL) {
        if (o.inYaml() && Objects.equals(o.block(), block)) {
          candidates.add(o.key());
        }
      }
      if (block == null) {
        candidates.addAll(Options.BLOCKS);
      }
      return closest(key, candidates);
    }

    private void putYaml(Option o, JsonNode node, String where) throws ConfigException {
      if (node == null || node.isNull()
          || (o.type() != OptionType.STRING && node.isTextual() && node.asText().isEmpty())) {
        return; // "key:" with no value leaves the key unset, as in bazel-remote
      }
      yamlValues.put(o.key(), fromYaml(o, node, where));
    }

    private static Object fromYaml(Option o, JsonNode node, String where) throws ConfigException {
      String source = "in " + where;
      String expected;
      switch (o.type()) {
        case STRING, ENUM -> {
          if (node.isValueNode()) {
            return convert(o, node.asText(), source);
          }
          expected = o.type() == OptionType.ENUM ? "one of " + String.join(", ", o.choices()) : "a string";
        }
        case BOOL -> {
          if (node.isBoolean()) {
            return node.booleanValue();
          }
          expected = "true or false";
        }
        case INT, LONG, GIB -> {
          if (node.isIntegralNumber()) {
            if (!node.canConvertToLong()) {
              throw new ConfigException(o.key(),
                  o.key() + ": " + node.asText() + " is too large (" + source + ")");
            }
            return convert(o, node.asText(), source);
          }
          expected = o.type() == OptionType.GIB ? "a whole number of GiB" : "an integer";
        }
        case DURATION -> {
          if (node.isTextual()) {
            return convert(o, node.asText(), source);
          }
          if (node.isIntegralNumber() && node.asLong() == 0) {
            return Duration.ZERO;
          }
          expected = "a duration such as 15s, 1m30s or 100ms";
        }
        case ADDRESS, ADDRESS_OR_NONE -> {
          if (node.isTextual()) {
            return convert(o, node.asText(), source);
          }
          expected = o.type() == OptionType.ADDRESS
              ? "an address such as :8080 or unix:///path.sock"
              : "an address such as :9092 or unix:///path.sock, or none";
        }
        case NUMBER_LIST -> {
          if (node.isArray()) {
            List<Double> list = new ArrayList<>();
            for (int i = 0; i < node.size(); i++) {
              JsonNode e = node.get(i);
              if (!e.isNumber()) {
                throw new ConfigException(o.key(), o.key() + ": expected a list of numbers, but item "
                    + (i + 1) + " is " + describe(e) + " (" + source + ")");
              }
              list.add(e.doubleValue());
            }
            return List.copyOf(list);
          }
          expected = "a list of numbers such as [.5, 1, 2.5]";
        }
        default -> throw new IllegalStateException(o.type().toString());
      }
      throw new ConfigException(o.key(),
          o.key() + ": expected " + expected + ", got " + describe(node) + " (" + source + ")");
    }

    private static String describe(JsonNode node) {
      if (node.isObject()) {
        return "a mapping";
      }
      if (node.isArray()) {
        return "a list";
      }
      if (node.isBoolean()) {
        return node.asText();
      }
      if (node.isNumber()) {
        return "the number " + node.asText();
      }
      if (node.isTextual()) {
        return "the string \"" + node.asText() + "\"";
      }
      return node.getNodeType().toString().toLowerCase();
    }

    /** Converts flag/env/YAML text, turning a conversion failure into a one-line error. */
    private static Object convert(Option o, String text, String source) throws ConfigException {
      try {
        return o.parseText(text);
      } catch (IllegalArgumentException e) {
        String from = source.startsWith("in ") ? source : "from " + source;
        throw new ConfigException(o.key(), o.key() + ": " + e.getMessage() + " (" + from + ")");
      }
    }

    Merged merge() {
      Map<String, Object> values = new LinkedHashMap<>();
      Map<String, String> sources = new LinkedHashMap<>();
      for (Option o : Options.ALL) {
        String key = o.key();
        if (flagValues.containsKey(key)) {
          values.put(key, flagValues.get(key));
          sources.put(key, flagSources.get(key));
        } else if (envValues.containsKey(key)) {
          values.put(key, envValues.get(key));
          sources.put(key, envSources.get(key));
        } else if (yamlValues.containsKey(key)) {
          values.put(key, yamlValues.get(key));
          sources.put(key, configFile.toString());
        } else {
          values.put(key, o.defaultValue());
        }
      }
      return new Merged(values, sources);
    }

    Config resolve(boolean enforceSupport) throws ConfigException {
      List<String> warnings = checkServiceLinks();
      Merged merged = merge();
      Map<String, Object> values = merged.values();
      Map<String, String> sources = merged.sources();
      Validator v = new Validator(values, sources, yamlBlocks,
          configFile == null ? null : configFile.toString());
      Path dir = v.dir(defaultDir());
      ListenAddress http = v.httpAddress();
      Optional<ListenAddress> grpc = v.grpcAddress();
      Optional<ListenAddress> profile = v.profileAddress();
      v.checkListeners(http, grpc, profile);
      v.checkSizes();
      Optional<String> auth = v.checkAuth();
      v.checkRemoteAsset(grpc);
      v.checkBuckets();
      Optional<String> proxy = v.checkProxies();
      if (enforceSupport) {
        v.checkSupported(proxy, auth);
      }
      return new Config(values, sources, dir, http, grpc, profile, proxy, auth,
          Optional.ofNullable(configFile), false, warnings);
    }

    private Path defaultDir() {
      String xdg = env.get("XDG_CACHE_HOME");
      if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) {
        return Path.of(xdg, "bazel-cache");
      }
      String home = env.get("HOME");
      if (home == null || home.isBlank()) {
        home = System.getProperty("user.home");
      }
      return Path.of(home, ".cache", "bazel-cache");
    }
  }

  /** Cross-field rules; each failure names one key. */
  private static final class Validator {
    private final Map<String, Object> values;
    private final Map<String, String> sources;
    private final Set<String> yamlBlocks;
    private final String configFile;

    Validator(Map<String, Object> values, Map<String, String> sources, Set<String> yamlBlocks,
        String configFile) {
      this.values = values;
      this.sources = sources;
      this.yamlBlocks = yamlBlocks;
      this.configFile = configFile;
    }

    private boolean isSet(String key) {
      return sources.containsKey(key);
    }

    private String str(String key) {
      Object v = values.get(key);
      return v == null ? "" : (String) v;
    }

    private boolean bool(String key) {
      return (Boolean) values.get(key);
    }

    private long number(String key) {
      return ((Number) values.get(key)).longValue();
    }

    private String from(String key) {
      String s = sources.get(key);
      if (s == null) {
        return "default";
      }
      return s.equals(configFile) ? "in " + s : "from " + s;
    }

    /** " (from SOURCE)" for a related key, when the problem is reported on another key. */
    private String also(String key) {
      return isSet(key) ? " (" + from(key) + ")" : "";
    }

    private ConfigException error(String key, String problem) {
      String where = isSet(key) ? " (" + from(key) + ")" : "";
      return new ConfigException(key, key + ": " + problem + where);
    }

    Path dir(Path defaultDir) throws ConfigException {
      if (!isSet("dir")) {
        return defaultDir;
      }
      String d = str("dir");
      if (d.isBlank()) {
        throw error("dir", "must not be empty");
      }
      try {
        return Path.of(d);
      } catch (RuntimeException e) {
        throw error("dir", "invalid path '" + d + "'");
      }
    }

    ListenAddress httpAddress() throws ConfigException {
      if (isSet("http_address") || !(isSet("host") || isSet("port"))) {
        return (ListenAddress) values.get("http_address");
      }
      String host = hostValue();
      return new ListenAddress.Tcp(host, (int) number("port"));
    }

    private String hostValue() throws ConfigException {
      String host = str("host").strip();
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      if (host.contains(" ") || host.contains("/")) {
        throw error("host", "invalid host '" + host + "'");
      }
      return host;
    }

    @SuppressWarnings("unchecked")
    Optional<ListenAddress> grpcAddress() throws ConfigException {
      if (isSet("grpc_address") || !isSet("grpc_port")) {
        return (Optional<ListenAddress>) values.get("grpc_address");
      }
      int port = (int) number("grpc_port");
      return port == 0 ? Optional.empty() : Optional.of(new ListenAddress.Tcp(hostValue(), port));
    }

    @SuppressWarnings("unchecked")
    Optional<ListenAddress> profileAddress() {
      if (isSet("profile_address")) {
        return (Optional<ListenAddress>) values.get("profile_address");
      }
      int port = (int) number("profile_port");
      return port > 0 ? Optional.of(new ListenAddress.Tcp(str("profile_host"), port)) : Optional.empty();
    }

    void checkListeners(ListenAddress http, Optional<ListenAddress> grpc, Optional<ListenAddress> profile)
        throws ConfigException {
      String httpKey = isSet("http_address") || !(isSet("host") || isSet("port")) ? "http_address" : "port";
      String grpcKey = isSet("grpc_address") || !isSet("grpc_port") ? "grpc_address" : "grpc_port";
      String profileKey = isSet("profile_address") ? "profile_address" : "profile_port";
      if (grpc.isPresent() && clash(http, grpc.get())) {
        throw error(grpcKey, "the gRPC listener " + grpc.get() + " uses the same " + what(http)
            + " as the HTTP listener " + http + " (" + httpKey + ")");
      }
      if (profile.isPresent() && clash(http, profile.get())) {
        throw error(profileKey, "the profiling listener " + profile.get() + " uses the same "
            + what(http) + " as the HTTP listener " + http);
      }
      if (profile.isPresent() && grpc.isPresent() && clash(grpc.get(), profile.get())) {
        throw error(profileKey, "the profiling listener " + profile.get() + " uses the same "
            + what(grpc.get()) + " as the gRPC listener " + grpc.get());
      }
    }

    private static String what(ListenAddress a) {
      return a instanceof ListenAddress.Unix ? "socket path" : "port";
    }

    private static boolean clash(ListenAddress a, ListenAddress b) {
      if (a instanceof ListenAddress.Tcp ta && b instanceof ListenAddress.Tcp tb) {
        return ta.port() != 0 && ta.port() == tb.port();
      }
      if (a instanceof ListenAddress.Unix ua && b instanceof ListenAddress.Unix ub) {
        return ua.path().equals(ub.path());
      }
      return false;
    }

    void checkSizes() throws ConfigException {
      long max = number("max_size");
      long hard = number("max_size_hard_limit");
      if (hard != 0 && hard < max) {
        throw error("max_size_hard_limit", hard + " GiB is below max_size (" + max
            + " GiB); use a value of at least max_size, or 0 to turn the hard limit off");
      }
    }

    Optional<String> checkAuth() throws ConfigException {
      boolean certSet = !str("tls_cert_file").isEmpty();
      boolean keySet = !str("tls_key_file").isEmpty();
      if (certSet && !keySet) {
        throw error("tls_key_file", "required when tls_cert_file is set" + also("tls_cert_file"));
      }
      if (keySet && !certSet) {
        throw error("tls_cert_file", "required when tls_key_file is set" + also("tls_key_file"));
      }
      if (!str("tls_ca_file").isEmpty() && !certSet) {
        throw error("tls_cert_file", "tls_cert_file and tls_key_file are required when tls_ca_file"
            + " (mTLS) is set" + also("tls_ca_file"));
      }
      List<String> methods = new ArrayList<>();
      List<String> keys = new ArrayList<>();
      if (!str("htpasswd_file").isEmpty()) {
        methods.add("htpasswd");
        keys.add("htpasswd_file");
      }
      if (!str("tls_ca_file").isEmpty()) {
        methods.add("mtls");
        keys.add("tls_ca_file");
      }
      if (!str("ldap.url").isEmpty() || yamlBlocks.contains("ldap")) {
        if (str("ldap.url").isEmpty()) {
          throw error("ldap.url", "required when an ldap block is configured");
        }
        if (str("ldap.base_dn").isEmpty()) {
          throw error("ldap.base_dn", "required when LDAP authentication is configured");
        }
        methods.add("ldap");
        keys.add("ldap.url");
      }
      if (methods.size() > 1) {
        throw error(keys.get(1), "at most one authentication method can be configured, but both "
            + keys.get(0) + " and " + keys.get(1) + " are set");
      }
      if (bool("allow_unauthenticated_reads") && methods.isEmpty()) {
        throw error("allow_unauthenticated_reads", "needs an authentication method (htpasswd_file,"
            + " tls_ca_file or ldap.url)");
      }
      return methods.stream().findFirst();
    }

    void checkRemoteAsset(Optional<ListenAddress> grpc) throws ConfigException {
      if (bool("experimental_remote_asset_api") && grpc.isEmpty()) {
        throw error("experimental_remote_asset_api", "needs the gRPC listener, but gRPC is disabled");
      }
    }

    @SuppressWarnings("unchecked")
    void checkBuckets() throws ConfigException {
      String key = "endpoint_metrics_duration_buckets";
      List<Double> buckets = (List<Double>) values.get(key);
      if (buckets.isEmpty()) {
        throw error(key, "must list at least one bucket");
      }
      double previous = 0;
      for (int i = 0; i < buckets.size(); i++) {
        double b = buckets.get(i);
        if (!(b > 0) || Double.isInfinite(b)) {
          throw error(key, "buckets must be positive numbers of seconds, got " + fmt(b));
        }
        if (i > 0 && b == previous) {
          throw error(key, "duplicate bucket " + fmt(b));
        }
        if (i > 0 && b < previous) {
          throw error(key, "buckets must be sorted in increasing order, but " + fmt(b)
              + " follows " + fmt(previous));
        }
        previous = b;
      }
    }

    private static String fmt(double d) {
      return d == Math.rint(d) && !Double.isInfinite(d) ? Long.toString((long) d) : Double.toString(d);
    }

    /** A block is enabled by its YAML block, or by its enabling key set by flag or BAZEL_REMOTE_*. */
    private boolean enabled(String block, String enablingKey) {
      if (yamlBlocks.contains(block)) {
        return true;
      }
      String source = sources.get(enablingKey);
      return !str(enablingKey).isEmpty()
          && source != null && (source.startsWith("-") || source.startsWith("BAZEL_REMOTE_"));
    }

    Optional<String> checkProxies() throws ConfigException {
      Map<String, String> enabling = new LinkedHashMap<>();
      enabling.put("s3_proxy", "s3_proxy.bucket");
      enabling.put("gcs_proxy", "gcs_proxy.bucket");
      enabling.put("http_proxy", "http_proxy.url");
      enabling.put("grpc_proxy", "grpc_proxy.url");
      enabling.put("azblob_proxy", "azblob_proxy.tenant_id");
      List<String> active = new ArrayList<>();
      for (Map.Entry<String, String> e : enabling.entrySet()) {
        if (enabled(e.getKey(), e.getValue())) {
          active.add(e.getKey());
        }
      }
      if (active.size() > 1) {
        String second = active.get(1);
        throw new ConfigException(second, second + ": at most one proxy backend can be configured,"
            + " but both " + active.get(0) + " and " + second + " are");
      }
      if (active.isEmpty()) {
        return Optional.empty();
      }
      String block = active.get(0);
      switch (block) {
        case "s3_proxy" -> checkS3();
        case "gcs_proxy" -> require("gcs_proxy.bucket", "when the GCS proxy is configured");
        case "http_proxy" -> checkRemote("http_proxy", "http", "https");
        case "grpc_proxy" -> checkRemote("grpc_proxy", "grpc", "grpcs");
        case "azblob_proxy" -> checkAzblob();
        default -> throw new IllegalStateException(block);
      }
      return Optional.of(block);
    }

    private void require(String key, String when) throws ConfigException {
      if (str(key).isBlank()) {
        Option o = Options.require(key);
        StringBuilder how = new StringBuilder(" (set it in the YAML file");
        if (o.flag() != null) {
          how.append(", with ").append(o.flag());
        }
        if (!o.envVars().isEmpty()) {
          how.append(" or ").append(o.envVars().get(0));
        }
        how.append(")");
        throw new ConfigException(key, key + ": required " + when + how);
      }
    }

    private void checkS3() throws ConfigException {
      require("s3_proxy.bucket", "when the S3 proxy is configured");
      require("s3_proxy.endpoint", "when the S3 proxy is configured (for AWS, for example"
          + " s3.us-east-1.amazonaws.com)");
      if (URL_SCHEME.matcher(str("s3_proxy.endpoint")).matches()) {
        throw error("s3_proxy.endpoint", "must be host[:port] without a scheme, got '"
            + str("s3_proxy.endpoint") + "' (use disable_ssl for plain HTTP)");
      }
      if (values.get("s3_proxy.auth_method") == null) {
        throw new ConfigException("s3_proxy.auth_method", "s3_proxy.auth_method: required when the"
            + " S3 proxy is configured; one of " + String.join(", ", Options.require(
                "s3_proxy.auth_method").choices()));
      }
      if (values.get("s3_proxy.auth_method") == Config.S3AuthMethod.ACCESS_KEY) {
        require("s3_proxy.access_key_id", "with auth_method access_key");
        require("s3_proxy.secret_access_key", "with auth_method access_key");
      }
    }

    private void checkRemote(String block, String plain, String secure) throws ConfigException {
      String key = block + ".url";
      require(key, "when the " + block + " backend is configured");
      var m = URL_SCHEME.matcher(str(key));
      String scheme = m.matches() ? m.group(1) : "";
      if (!scheme.equals(plain) && !scheme.equals(secure)) {
        throw error(key, "must be a " + plain + ":// or " + secure + ":// URL, got '" + str(key) + "'");
      }
      boolean keySet = !str(block + ".key_file").isEmpty();
      boolean certSet = !str(block + ".cert_file").isEmpty();
      if (keySet && !certSet) {
        throw error(block + ".cert_file", "required when " + block + ".key_file is set"
            + also(block + ".key_file"));
      }
      if (certSet && !keySet) {
        throw error(block + ".key_file", "required when " + block + ".cert_file is set"
            + also(block + ".cert_file"));
      }
    }

    private void checkAzblob() throws ConfigException {
      String when = "when the Azure blob proxy is configured";
      require("azblob_proxy.storage_account", when);
      require("azblob_proxy.container_name", when);
      Object method = values.get("azblob_proxy.auth_method");
      if (method == null) {
        throw new ConfigException("azblob_proxy.auth_method", "azblob_proxy.auth_method: required "
            + when + "; one of " + String.join(", ", Options.require("azblob_proxy.auth_method")
                .choices()));
      }
      switch ((Config.AzblobAuthMethod) method) {
        case SHARED_KEY -> require("azblob_proxy.shared_key", "with auth_method shared_key");
        case CLIENT_SECRET -> {
          require("azblob_proxy.client_id", "with auth_method client_secret");
          require("azblob_proxy.client_secret", "with auth_method client_secret");
        }
        case CLIENT_CERTIFICATE -> {
          require("azblob_proxy.client_id", "with auth_method client_certificate");
          require("azblob_proxy.cert_path", "with auth_method client_certificate");
        }
        default -> { }
      }
    }

    /** Refuses set options whose feature is not built yet. */
    void checkSupported(Optional<String> proxy, Optional<String> auth) throws ConfigException {
      List<String> refused = new ArrayList<>();
      for (Option o : Options.ALL) {
        if (o.status() != Status.NOT_YET) {
          continue;
        }
        String block = o.block();
        if (block != null && !proxy.equals(Optional.of(block))
            && !(block.equals("ldap") && auth.equals(Optional.of("ldap")))) {
          continue; // values of a disabled block are ignored, e.g. AWS_PROFILE without S3
        }
        if (!Objects.equals(values.get(o.key()), o.defaultValue())) {
          refused.add(o.key());
        }
      }
      if (!refused.isEmpty()) {
        throw new ConfigException(refused.get(0), "not supported yet: " + String.join(", ", refused)
            + " (this build of bazel-cache does not implement "
            + (refused.size() == 1 ? "this option" : "these options") + " yet; remove "
            + (refused.size() == 1 ? "it" : "them") + " or leave " + (refused.size() == 1 ? "it" : "them")
            + " at the default)");
      }
    }
  }

  /** The candidate closest to {@code word} if it is near enough to be a typo, else null. */
  private static String closest(String word, List<String> candidates) {
    String best = null;
    int bestDistance = Integer.MAX_VALUE;
    for (String c : candidates) {
      int d = distance(word, c);
      if (d < bestDistance) {
        bestDistance = d;
        best = c;
      }
    }
    return bestDistance <= Math.max(2, word.length() / 4) ? best : null;
  }

  /** Levenshtein distance. */
  private static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }
}
