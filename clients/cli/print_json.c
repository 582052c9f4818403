/* print_json.c: the jansson printer. Owns turning a protobuf reply into a
 * JSON object (generically, from the message descriptors: every present
 * field, enums by name, bytes as a string or "hex:...") and printing it as
 * one compact line. print_human.c prints the same object for people. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "print.h"

static json_t *jbytes(ProtobufCBinaryData b) {
  json_t *s = json_stringn((const char *)b.data, b.len);
  if (s) return s;
  /* not UTF-8: show hex */
  char *hex = malloc(b.len * 2 + 5);
  strcpy(hex, "hex:");
  for (size_t i = 0; i < b.len; i++) sprintf(hex + 4 + 2 * i, "%02x", b.data[i]);
  s = json_string(hex);
  free(hex);
  return s;
}

/* An enum value for people (the CLI's text and JSON, the admin port's
 * JSON alike): its protocol name without the prefix every value of its
 * enum shares, GROUP_STATE_OPEN as OPEN, JOIN_AUTO as AUTO, HELD as HELD. */
static const char *enum_name(const ProtobufCEnumDescriptor *d, int v) {
  const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
  if (!e) return "UNSPECIFIED";
  size_t common = strlen(e->name);
  for (unsigned i = 0; i < d->n_values; i++) {
    const char *a = e->name, *b = d->values[i].name;
    size_t k = 0;
    while (k < common && a[k] && a[k] == b[k]) k++;
    common = k;
  }
  while (common && e->name[common - 1] != '_') common--; /* whole words only */
  return e->name + common;
}

/* Generic: every present field of a message as a JSON member. */
static json_t *msg_json(const ProtobufCMessage *m) {
  json_t *o = json_object();
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const uint8_t *base = (const uint8_t *)m;
    const void *val = base + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
               f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
      if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset)) continue;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      json_t *a = json_array();
      for (size_t k = 0; k < n; k++) {
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
          json_array_append_new(a, msg_json((*(ProtobufCMessage * const **)val)[k]));
        else if (f->type == PROTOBUF_C_TYPE_BYTES)
          json_array_append_new(a, jbytes((*(ProtobufCBinaryData * const *)val)[k]));
      }
      json_object_set_new(o, f->name, a);
      continue;
    }
    json_t *j = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT64: { /* ids use all 64 bits: a string, as protobuf's JSON mapping */
      char num[24];
      snprintf(num, sizeof num, "%" PRIu64, *(const uint64_t *)val);
      j = json_string(num);
      break;
    }
    case PROTOBUF_C_TYPE_INT64: j = json_integer(*(const int64_t *)val); break;
    case PROTOBUF_C_TYPE_UINT32: j = json_integer(*(const uint32_t *)val); break;
    case PROTOBUF_C_TYPE_INT32: j = json_integer(*(const int32_t *)val); break;
    case PROTOBUF_C_TYPE_BOOL: j = json_boolean(*(const protobuf_c_boolean *)val); break;
    case PROTOBUF_C_TYPE_ENUM: j = json_string(enum_name(f->descriptor, *(const int *)val)); break;
    case PROTOBUF_C_TYPE_BYTES: j = jbytes(*(const ProtobufCBinaryData *)val); break;
    case PROTOBUF_C_TYPE_STRING:
      if (*(char *const *)val) j = json_string(*(char *const *)val);
      break;
    case PROTOBUF_C_TYPE_MESSAGE:
      if (*(ProtobufCMessage *const *)val) j = msg_json(*(ProtobufCMessage *const *)val);
      break;
    default: break;
    }
    if (j) json_object_set_new(o, f->name, j);
  }
  return o;
}

json_t *cli_reply_json(const pintuan_response *r) {
  json_t *o = msg_json(&r->base);
  json_object_set_new(o, "status", json_string(pintuan_status_str(r->status)));
  return o;
}

void cli_print_json(const pintuan_response *r) {
  json_t *o = cli_reply_json(r);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  puts(s);
  free(s);
  json_decref(o);
}
