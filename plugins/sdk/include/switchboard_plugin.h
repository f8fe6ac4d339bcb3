/*
 * switchboard_plugin.h: the Switchboard plugin ABI 1.1, for plugins written
 * in C or C++.
 *
 * Generated from plugins/sdk/src/abi.rs by cbindgen; do not edit. To
 * regenerate after changing abi.rs, run from the repository root:
 *   SWITCHBOARD_BLESS_HEADER=1 cargo test -p switchboard-plugin-sdk --test header
 *
 * A plugin is a shared library exporting one function,
 *   const SbHeader *switchboard_plugin_entry(void);
 * returning a pointer to a static SbHeader: SB_MAGIC, SB_ABI_MAJOR,
 * SB_ABI_MINOR, then the plugin's SbPlugin. Every descriptor (SbPlugin,
 * SbRule, SbChannel, SbOption) starts with struct_size = sizeof(itself);
 * arrays of descriptors are plain C arrays. Strings (SbStr) are UTF-8, not
 * NUL-terminated, and descriptors with their strings must stay valid for the
 * life of the process (use static data): the host never unloads a library.
 * A rule needs `build` and `evaluate`; `free` may be NULL. A NULL required
 * function pointer is refused when the plugin is loaded, at its line in
 * rules.yaml. Error codes of plugin rules start at 1000.
 *
 * THREADING. The host decides on many threads at once:
 *  - `evaluate` is called on the SAME rule object from many threads at the
 *    same time. A rule object must be immutable after `build`, or guard what
 *    it changes (atomics, a mutex); so must any global state of the plugin.
 *  - `build` and `free` are called on any thread, while other rule objects
 *    of the plugin are being evaluated on other threads (a reload builds the
 *    new configuration while the old one still decides). `free` is called
 *    once per object, never while that object is being evaluated.
 *  - switchboard_plugin_entry may be called more than once, from any thread,
 *    and must return the same header each time.
 * The SbContext passed to `evaluate`, and everything reached from it
 * (strings, arrays, callbacks, sinks), is valid only during that call and
 * only on the calling thread.
 *
 * Answering: fill *answer (outcome and, for SB_OUTCOME_SELECTED, the
 * instance's index) and return SB_STATUS_OK. For SB_OUTCOME_UNUSABLE and
 * SB_OUTCOME_FAILED, first write the error kind (such as
 * "instance_disconnected", or your own) with cx->write(cx->kind_sink, ...)
 * and a message with cx->write(cx->message_sink, ...).
 */

#ifndef SWITCHBOARD_PLUGIN_H
#define SWITCHBOARD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
/** An SbStr for a string literal: SB_STR("first_connected_c"). */
#define SB_STR(literal) { (const uint8_t *)(literal), sizeof(literal) - 1 }

/** The symbol every plugin exports, as a string. */
#define SB_ENTRY_SYMBOL "switchboard_plugin_entry"

#ifdef __cplusplus
extern "C" {
#endif
/** The one function a plugin exports: returns its static SbHeader. */
const struct SbHeader *switchboard_plugin_entry(void);
#ifdef __cplusplus
}
#endif

/**
 * The first 8 bytes of a [`Header`]: `SWBPLUG1` read as a little-endian
 * integer.
 */
#define SB_MAGIC 3550900617457325907

/**
 * The ABI major version: a host refuses any other.
 */
#define SB_ABI_MAJOR 1

/**
 * The ABI minor version: a host accepts plugins from minor 0 up to its own.
 */
#define SB_ABI_MINOR 1

/**
 * One of `choices`.
 */
#define SB_OPTION_CHOICE 0

/**
 * `true` / `false`.
 */
#define SB_OPTION_BOOL 1

/**
 * A whole number.
 */
#define SB_OPTION_INTEGER 2

/**
 * Any string.
 */
#define SB_OPTION_STRING 3

/**
 * A list of strings.
 */
#define SB_OPTION_STRING_LIST 4

/**
 * The rule has no unusable case.
 */
#define SB_ON_UNAVAILABLE_NONE 0

/**
 * Fail by default.
 */
#define SB_ON_UNAVAILABLE_ERROR 1

/**
 * Fall through by default.
 */
#define SB_ON_UNAVAILABLE_SKIP 2

/**
 * `answer` is filled.
 */
#define SB_STATUS_OK 0

/**
 * The rule panicked (or failed in a way it cannot answer); the message
 * was written to the context's `message_sink`.
 */
#define SB_STATUS_PANICKED 1

/**
 * `instance_index` is selected.
 */
#define SB_OUTCOME_SELECTED 0

/**
 * The rule does not apply.
 */
#define SB_OUTCOME_NO_MATCH 1

/**
 * Unusable (`on_unavailable` decides); kind and message via the sinks.
 */
#define SB_OUTCOME_UNUSABLE 2

/**
 * Failed; kind and message via the sinks.
 */
#define SB_OUTCOME_FAILED 3

/**
 * A borrowed UTF-8 string (not NUL-terminated): valid for the duration of
 * the call it is passed to or, inside descriptors, for the life of the
 * loaded library.
 */
typedef struct SbStr {
  /**
   * First byte; may be null when `len` is 0.
   */
  const uint8_t *ptr;
  /**
   * Length in bytes.
   */
  size_t len;
} SbStr;

/**
 * One option a rule accepts (ABI 1.1).
 */
typedef struct SbOption {
  /**
   * `sizeof` this struct as the plugin was built.
   */
  size_t struct_size;
  /**
   * Key in rules.yaml.
   */
  struct SbStr name;
  /**
   * One of [`option_kind`].
   */
  uint8_t kind;
  /**
   * For `CHOICE`: the allowed words.
   */
  const struct SbStr *choices;
  /**
   * How many.
   */
  size_t choice_count;
  /**
   * The default, as written in YAML (shown by `switchboard rules`; the
   * host does not apply it: an option not given is absent from `build`'s
   * options).
   */
  struct SbStr default_value;
  /**
   * One line of documentation.
   */
  struct SbStr doc;
} SbOption;

/**
 * An option value given in rules.yaml (borrowed for the `build` call).
 */
typedef struct SbOptionValue {
  /**
   * The key.
   */
  struct SbStr name;
  /**
   * One of [`option_kind`] (`STRING` for both `CHOICE` and `STRING`).
   */
  uint8_t kind;
  /**
   * For `BOOL`: 1 or 0.
   */
  uint8_t boolean;
  /**
   * For `INTEGER`.
   */
  int64_t integer;
  /**
   * For `CHOICE` and `STRING`.
   */
  struct SbStr string;
  /**
   * For `STRING_LIST`.
   */
  const struct SbStr *list;
  /**
   * How many.
   */
  size_t list_len;
} SbOptionValue;

/**
 * Hands text to the host, which copies it before returning. (Every
 * function pointer type of the ABI is nullable, so that C can spell it;
 * the host checks at load which ones a plugin must provide.)
 */
typedef void (*SbSinkFn)(void *sink, struct SbStr text);

/**
 * Builds a rule object from its options: called with the rule's
 * [`RuleV1::user_data`]. Returns the rule object (any non-null pointer the
 * plugin chooses), or null with a message written to `sink` (shown at the
 * rule's entry in rules.yaml). May run on any thread.
 */
typedef void *(*SbBuildFn)(const void *user_data,
                           const struct SbOptionValue *options,
                           size_t count,
                           void *sink,
                           SbSinkFn write);

/**
 * One pattern of the sending channel found in the body.
 */
typedef struct SbPattern {
  /**
   * 0 override, 1 temporary switch.
   */
  uint8_t kind;
  /**
   * 1 if `index` is set (0: a number too large for any index).
   */
  uint8_t has_index;
  /**
   * The index named.
   */
  uint64_t index;
} SbPattern;

/**
 * The number of instances on the sending channel.
 */
typedef size_t (*SbInstanceCountFn)(const void *host);

/**
 * One instance, borrowed from the host for the duration of the call.
 */
typedef struct SbInstance {
  /**
   * Instance id.
   */
  struct SbStr id;
  /**
   * Its index.
   */
  uint64_t index;
  /**
   * Phone as written.
   */
  struct SbStr phone;
  /**
   * Normalized phone digits.
   */
  struct SbStr phone_digits;
  /**
   * 1 if connected.
   */
  uint8_t connected;
  /**
   * 1 if the location's default on this channel.
   */
  uint8_t is_default;
  /**
   * How many users it is assigned to (see `ContextV1::user_at`).
   */
  size_t user_count;
} SbInstance;

/**
 * Fills `out` with the `position`th instance (by ascending index); returns
 * 0 past the end.
 */
typedef uint8_t (*SbInstanceAtFn)(const void *host, size_t position, struct SbInstance *out);

/**
 * The position of the instance with this index, or `SIZE_MAX`.
 */
typedef size_t (*SbFindIndexFn)(const void *host, uint64_t index);

/**
 * Fills `out` with user `k` of the `position`th instance; returns 0 if none.
 */
typedef uint8_t (*SbUserAtFn)(const void *host, size_t position, size_t k, struct SbStr *out);

/**
 * Everything a rule may read about one request, borrowed for the call
 * (ABI 1.1). Instances are reached through callbacks so that a large
 * location costs nothing until it is read. The host fills every callback;
 * they are nullable only so that C can spell the type.
 */
typedef struct SbContext {
  /**
   * `sizeof` this struct as the host was built: a plugin reads only the
   * fields it knows, and the host only ever appends.
   */
  size_t struct_size;
  /**
   * Location id.
   */
  struct SbStr location;
  /**
   * Sending channel id.
   */
  struct SbStr channel;
  /**
   * The original body.
   */
  struct SbStr body;
  /**
   * 1 if the request has a contact.
   */
  uint8_t has_contact;
  /**
   * The contact id (empty if none).
   */
  struct SbStr contact_id;
  /**
   * The contact's tags.
   */
  const struct SbStr *tags;
  /**
   * How many.
   */
  size_t tag_count;
  /**
   * 1 if the contact has an assigned user.
   */
  uint8_t has_assigned_user;
  /**
   * The assigned user.
   */
  struct SbStr assigned_user;
  /**
   * The sending channel's patterns, in body order.
   */
  const struct SbPattern *patterns;
  /**
   * How many.
   */
  size_t pattern_count;
  /**
   * Opaque host state for the callbacks below.
   */
  const void *host;
  /**
   * See [`InstanceCountFn`].
   */
  SbInstanceCountFn instance_count;
  /**
   * See [`InstanceAtFn`].
   */
  SbInstanceAtFn instance_at;
  /**
   * See [`FindIndexFn`].
   */
  SbFindIndexFn find_index;
  /**
   * See [`UserAtFn`].
   */
  SbUserAtFn user_at;
  /**
   * Where a failing answer's kind goes (`write(kind_sink, ...)`).
   */
  void *kind_sink;
  /**
   * Where a failing answer's message (or a panic message) goes.
   */
  void *message_sink;
  /**
   * Writes to a sink.
   */
  SbSinkFn write;
} SbContext;

/**
 * The answer a rule fills in.
 */
typedef struct SbAnswer {
  /**
   * One of [`outcome`].
   */
  uint8_t outcome;
  /**
   * For `SELECTED`: the instance's index (the N in `{ C#N }`).
   */
  uint64_t instance_index;
} SbAnswer;

/**
 * Evaluates a rule object for one request: returns a [`status`] and fills
 * `answer`. Called from many threads at once, on the same object too.
 */
typedef uint32_t (*SbEvaluateFn)(const void *rule,
                                 const struct SbContext *cx,
                                 struct SbAnswer *answer);

/**
 * Frees a rule object built by this plugin; called once per object, on
 * any thread, never while the object is being evaluated.
 */
typedef void (*SbFreeFn)(void *rule);

/**
 * A rule descriptor (ABI 1.1).
 */
typedef struct SbRule {
  /**
   * `sizeof` this struct as the plugin was built.
   */
  size_t struct_size;
  /**
   * Rule id (`business_hours`): lower-case ASCII letters, digits, `_`.
   */
  struct SbStr id;
  /**
   * One line for `switchboard rules`.
   */
  struct SbStr summary;
  /**
   * Error code of its failures (≥ 1000).
   */
  uint32_t code;
  /**
   * One of [`on_unavailable`].
   */
  uint8_t on_unavailable;
  /**
   * Its options.
   */
  const struct SbOption *options;
  /**
   * How many.
   */
  size_t option_count;
  /**
   * Anything the plugin wants `build` to receive (may be null).
   */
  const void *user_data;
  /**
   * Builds a rule object. Required: null is a load error.
   */
  SbBuildFn build;
  /**
   * Evaluates one. Required: null is a load error.
   */
  SbEvaluateFn evaluate;
  /**
   * Frees one. Optional: null when rule objects need no freeing.
   */
  SbFreeFn free;
} SbRule;

/**
 * A channel's syntax (ABI 1.1).
 */
typedef struct SbChannel {
  /**
   * `sizeof` this struct as the plugin was built.
   */
  size_t struct_size;
  /**
   * Channel id (`telegram`).
   */
  struct SbStr id;
  /**
   * Pattern code (`TG`).
   */
  struct SbStr code;
  /**
   * Tag prefix (`tg:`).
   */
  struct SbStr tag_prefix;
  /**
   * One line for `switchboard rules`.
   */
  struct SbStr summary;
  /**
   * 1 if `{ C#N }` is an override.
   */
  uint8_t has_override;
  /**
   * 1 if `{TEMP-C#N}` is a temporary switch.
   */
  uint8_t has_temporary_switch;
} SbChannel;

/**
 * A plugin's contents (ABI 1.1).
 */
typedef struct SbPlugin {
  /**
   * `sizeof` this struct as the plugin was built (ABI 1.1 and later).
   */
  size_t struct_size;
  /**
   * The plugin's name.
   */
  struct SbStr name;
  /**
   * The plugin's own version.
   */
  struct SbStr version;
  /**
   * Rule descriptors (an array with the stride of its first element's
   * `struct_size`); may be null when `rule_count` is 0.
   */
  const struct SbRule *rules;
  /**
   * How many.
   */
  size_t rule_count;
  /**
   * Channel descriptors (as `rules`).
   */
  const struct SbChannel *channels;
  /**
   * How many.
   */
  size_t channel_count;
} SbPlugin;

/**
 * What `switchboard_plugin_entry` returns: checked field by field, magic
 * first. Its layout is the same in every 1.x version.
 */
typedef struct SbHeader {
  /**
   * [`MAGIC`].
   */
  uint64_t magic;
  /**
   * [`ABI_MAJOR`] of the SDK or header the plugin was built with.
   */
  uint16_t abi_major;
  /**
   * [`ABI_MINOR`] of that SDK or header.
   */
  uint16_t abi_minor;
  /**
   * The plugin's contents; read only once the version matched.
   */
  const struct SbPlugin *plugin;
} SbHeader;

#endif  /* SWITCHBOARD_PLUGIN_H */
