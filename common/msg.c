/* msg.c - protobuf-c over nng. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
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
