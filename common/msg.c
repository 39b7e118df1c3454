/* msg.c - protobuf-c over nng. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "gust/util.h"

#include "gust/msg.h"

int gust_msg_pack(const ProtobufCMessage *m, nng_msg **out)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	nng_msg *msg;
	int rv;
	if ((rv = nng_msg_alloc(&msg, n)) != 0)
		return gust_err_from_nng(rv);
	protobuf_c_message_pack(m, nng_msg_body(msg));
	*out = msg;
	return 0;
}

Gust__ActivationRequest *gust_msg_request(nng_msg *m)
{
	return gust__activation_request__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
}

Gust__ActivationResult *gust_msg_result(nng_msg *m)
{
	return gust__activation_result__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
}

/* The readers below follow libprotobuf-c 1.4 (protobuf-c.c: scan_varint,
 * parse_tag_and_wiretype, scan_length_prefixed_data) byte for byte, so that
 * the scheduler refuses exactly what the invoker's unpack would. */

/* A varint value: at most ten bytes. */
static int pb_varint(const uint8_t **p, const uint8_t *e, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (*p + i >= e)
			return GUST_EPROTO;
		uint8_t b = (*p)[i];
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*p += i + 1;
			*v = x;
			return 0;
		}
	}
	return GUST_EPROTO;
}

/* A tag: at most five bytes, the field number kept to 32 bits; a first byte
 * without field bits is refused (though 0x80 0x00, field 0, is not). */
static int pb_tag(const uint8_t **p, const uint8_t *e, uint32_t *field, int *wt)
{
	const uint8_t *d = *p;
	size_t max = (size_t)(e - d) < 5 ? (size_t)(e - d) : 5;
	if (max == 0 || (d[0] & 0xf8) == 0)
		return GUST_EPROTO;
	*wt = d[0] & 7;
	uint32_t tag = (uint32_t)(d[0] & 0x7f) >> 3;
	unsigned shift = 4;
	if ((d[0] & 0x80) == 0) {
		*field = tag;
		*p = d + 1;
		return 0;
	}
	for (size_t i = 1; i < max; i++) {
		tag |= (uint32_t)(d[i] & 0x7f) << shift;
		if ((d[i] & 0x80) == 0) {
			*field = tag;
			*p = d + i + 1;
			return 0;
		}
		shift += 7;
	}
	return GUST_EPROTO;
}

/* A length prefix: at most five bytes, and no more than what is left. */
static int pb_len(const uint8_t **p, const uint8_t *e, size_t *n)
{
	const uint8_t *d = *p;
	size_t max = (size_t)(e - d) < 5 ? (size_t)(e - d) : 5;
	uint64_t v = 0;
	for (size_t i = 0; i < max; i++) {
		v |= (uint64_t)(d[i] & 0x7f) << (7 * i);
		if ((d[i] & 0x80) == 0) {
			if (v > INT_MAX || v > (uint64_t)(e - d) - (i + 1))
				return GUST_EPROTO;
			*p = d + i + 1;
			*n = (size_t)v;
			return 0;
		}
	}
	return GUST_EPROTO;
}

/* The wire type protobuf-c insists on for ActivationRequest's fields by
 * number (gust.proto): 2 length-delimited (strings, bytes), 0 varint (int32,
 * int64); -1 any: fields not of the message (skipped), and bools, which
 * protobuf-c reads from whatever bytes they come in. */
#define PB_BIT(n) (1u << (n))
static int request_wire_type(uint32_t field)
{
	const uint32_t len = PB_BIT(1) | PB_BIT(2) | PB_BIT(3) | PB_BIT(4) | PB_BIT(5) | PB_BIT(8) |
	                     PB_BIT(9) | PB_BIT(10) | PB_BIT(11) | PB_BIT(16) | PB_BIT(17) |
	                     PB_BIT(18) | PB_BIT(19) | PB_BIT(21) | PB_BIT(25) | PB_BIT(26);
	const uint32_t var =
	    PB_BIT(6) | PB_BIT(13) | PB_BIT(14) | PB_BIT(15) | PB_BIT(20) | PB_BIT(22) | PB_BIT(23);
	if (field >= 32)
		return -1;
	return (len & PB_BIT(field)) ? 2 : (var & PB_BIT(field)) ? 0 : -1;
}

int gust_msg_request_head(const void *buf, size_t len, gust_request_head *h)
{
	const uint8_t *p = buf, *e = p + len;
	memset(h, 0, sizeof(*h));
	h->subject = h->kind = h->main = h->binding = h->params = h->mac = (gust_msg_str){"", 0};
	/* absent strings are "", never NULL: callers print them with %.*s */
	h->activation_id = h->namespace_ = h->action = h->version = h->user = h->journal_id =
	    h->code_key = (gust_msg_str){"", 0};
	while (p < e) {
		uint64_t v = 0;
		uint32_t field;
		int wt;
		if (pb_tag(&p, e, &field, &wt) != 0)
			return GUST_EPROTO;
		int want = request_wire_type(field);
		if (want >= 0 && wt != want)
			return GUST_EPROTO;
		gust_msg_str str = {"", 0}, bytes = {"", 0};
		const uint8_t *raw = p; /* the field's bytes after its tag */
		switch (wt) {
		case 0:
			if (pb_varint(&p, e, &v) != 0)
				return GUST_EPROTO;
			break;
		case 1:
			if (e - p < 8)
				return GUST_EPROTO;
			p += 8;
			break;
		case 2: {
			size_t n;
			if (pb_len(&p, e, &n) != 0)
				return GUST_EPROTO;
			/* up to a NUL, as the C string protobuf-c would make */
			str = (gust_msg_str){(const char *)p, strnlen((const char *)p, n)};
			bytes = (gust_msg_str){(const char *)p, n};
			p += n;
			break;
		}
		case 5:
			if (e - p < 4)
				return GUST_EPROTO;
			p += 4;
			break;
		default:
			return GUST_EPROTO; /* groups (3, 4) and 6, 7 */
		}
		switch (field) {
		case 1:
			h->activation_id = str;
			break;
		case 2:
			h->namespace_ = str;
			break;
		case 3:
			h->action = str;
			break;
		case 4:
			h->version = str;
			break;
		case 16:
			h->code_key = str;
			break;
		case 19:
			h->user = str;
			break;
		case 21:
			h->journal_id = str;
			break;
		case 5:
			h->params = bytes;
			break;
		case 10:
			h->kind = str;
			break;
		case 11:
			h->main = str;
			break;
		case 17:
			h->subject = str;
			break;
		case 25:
			h->binding = str;
			break;
		case 26:
			h->mac = bytes;
			break;
		case 15:
			h->log_limit = (int64_t)v;
			break;
		case 7:
		case 12:
		case 24: {
			/* a bool as protobuf-c reads one: true when any of its
			 * bytes (a length prefix included) has a low bit set */
			bool b = false;
			for (const uint8_t *q = raw; q < p; q++)
				if (*q & 0x7f)
					b = true;
			if (field == 7)
				h->blocking = b;
			else if (field == 12)
				h->binary = b;
			else
				h->egress = b;
			break;
		}
		/* int32 as protobuf reads it: the low 32 bits */
		case 13:
			h->memory_mb = (int32_t)(uint32_t)v;
			break;
		case 14:
			h->timeout_ms = (int32_t)(uint32_t)v;
			break;
		case 22:
			h->attempt = (int32_t)(uint32_t)v;
			break;
		case 23:
			h->concurrency = (int32_t)(uint32_t)v;
			break;
		default:
			break;
		}
	}
	return 0;
}

size_t gust_warm_key(char *buf, size_t size, const gust_request_head *h)
{
	const gust_msg_str *u = h->user.n ? &h->user : &h->namespace_;
	int n = snprintf(buf, size, "%.*s|%.*s|%.*s", (int)u->n, u->p, (int)h->code_key.n,
	                 h->code_key.p, (int)h->version.n, h->version.p);
	return n < 0 ? 0 : (size_t)n;
}

int gust_msg_error_result(const char *activation_id, int err, const char *msg, nng_msg **out)
{
	Gust__ActivationResult r = GUST__ACTIVATION_RESULT__INIT;
	gust_buf body = {0};
	r.activation_id = (char *)activation_id;
	if (msg == NULL)
		msg = gust_strerror(err);
	r.status = 3;
	r.error = err;
	r.error_msg = (char *)msg;
	gust_buf_puts(&body, "{\"error\":");
	gust_buf_json_str(&body, msg, strlen(msg));
	gust_buf_puts(&body, "}");
	r.result.data = (uint8_t *)body.data;
	r.result.len = body.len;
	int rv = gust_msg_pack(&r.base, out);
	gust_buf_free(&body);
	return rv;
}

int gust_nng_req_open(nng_socket *s, int recv_timeout_ms)
{
	int rv;
	if ((rv = nng_req0_open(s)) != 0)
		return gust_err_from_nng(rv);
	if ((rv = nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, recv_timeout_ms)) != 0 ||
	    (rv = nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 64u << 20)) != 0) {
		nng_close(*s);
		return gust_err_from_nng(rv);
	}
	return 0;
}

int gust_nng_req_failover(nng_socket s)
{
	/* nng's req resends a request at once when the pipe it went out on
	 * closes, but only while resends are on. A resend time of a day never
	 * fires for a live peer (every wait is far shorter), so this turns on
	 * exactly that: when the scheduler dies, the same request (same
	 * activation id) goes to its successor as soon as we are connected. */
	int rv = nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 86400000);
	return gust_err_from_nng(rv);
}
