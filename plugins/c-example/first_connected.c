/*
 * A Switchboard plugin in C: rule `first_connected_c`, the lowest-indexed
 * connected instance of the request's channel at the location. With the
 * option `skip_default: true` it never picks the location's default
 * instance. No connected candidate: `no_match` (the chain goes on).
 *
 * Build, from the repository root:
 *   cc -shared -fPIC -I plugins/sdk/include -o libfirst_connected_c.so plugins/c-example/first_connected.c
 *
 * rules.yaml:
 *   plugins:
 *     - path: libfirst_connected_c.so
 *   rules:
 *     - manual_override
 *     - rule: first_connected_c
 *       skip_default: true
 *     - any_available
 *
 * Thread safety: a rule object is an immutable struct after `build`, and
 * `evaluate` only reads it and its context, so any number of threads may
 * evaluate it at once (see THREADING in switchboard_plugin.h).
 */

#include <stdlib.h>
#include <string.h>

#include "switchboard_plugin.h"

/* The rule object `build` returns: its options, read once. */
struct first_connected {
    int skip_default;
};

static int str_is(SbStr s, const char *literal) {
    size_t n = strlen(literal);
    return s.len == n && (n == 0 || memcmp(s.ptr, literal, n) == 0);
}

static void say(SbSinkFn write, void *sink, const char *text) {
    if (write != NULL) {
        SbStr s;
        s.ptr = (const uint8_t *)text;
        s.len = strlen(text);
        write(sink, s);
    }
}

static void *build(const void *user_data, const SbOptionValue *options, size_t count, void *sink, SbSinkFn write) {
    struct first_connected *rule;
    size_t i;
    (void)user_data;
    rule = (struct first_connected *)malloc(sizeof *rule);
    if (rule == NULL) {
        say(write, sink, "first_connected_c: out of memory");
        return NULL;
    }
    rule->skip_default = 0; /* the option's default: false */
    for (i = 0; i < count; i++) {
        if (str_is(options[i].name, "skip_default") && options[i].kind == SB_OPTION_BOOL) {
            rule->skip_default = options[i].boolean != 0;
        }
    }
    return rule;
}

static uint32_t evaluate(const void *object, const SbContext *cx, SbAnswer *answer) {
    const struct first_connected *rule = (const struct first_connected *)object;
    size_t count, position;
    if (cx->instance_count == NULL || cx->instance_at == NULL) {
        say(cx->write, cx->message_sink, "first_connected_c: the host gave no instance callbacks");
        return SB_STATUS_PANICKED;
    }
    /* Instances come in ascending index order: the first fit is the lowest. */
    count = cx->instance_count(cx->host);
    for (position = 0; position < count; position++) {
        SbInstance instance;
        if (!cx->instance_at(cx->host, position, &instance)) {
            break;
        }
        if (instance.connected && !(rule->skip_default && instance.is_default)) {
            answer->outcome = SB_OUTCOME_SELECTED;
            answer->instance_index = instance.index;
            return SB_STATUS_OK;
        }
    }
    answer->outcome = SB_OUTCOME_NO_MATCH;
    answer->instance_index = 0;
    return SB_STATUS_OK;
}

static void release(void *object) {
    free(object);
}

static const SbOption options[] = {
    {
        sizeof(SbOption),
        SB_STR("skip_default"),
        SB_OPTION_BOOL,
        NULL,
        0,
        SB_STR("false"),
        SB_STR("never pick the location's default instance"),
    },
};

static const SbRule rules[] = {
    {
        sizeof(SbRule),
        SB_STR("first_connected_c"),
        SB_STR("the lowest-indexed connected instance (a plugin written in C)"),
        1101,
        SB_ON_UNAVAILABLE_NONE,
        options,
        sizeof options / sizeof options[0],
        NULL,
        build,
        evaluate,
        release,
    },
};

static const SbPlugin plugin = {
    sizeof(SbPlugin),
    SB_STR("first-connected-c"),
    SB_STR("1.0.0"),
    rules,
    sizeof rules / sizeof rules[0],
    NULL,
    0,
};

static const SbHeader header = {SB_MAGIC, SB_ABI_MAJOR, SB_ABI_MINOR, &plugin};

const SbHeader *switchboard_plugin_entry(void) {
    return &header;
}
