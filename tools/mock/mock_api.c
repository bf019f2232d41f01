/* mock_api: the wire shapes cancelproxy-mock speaks — OpenAI chat
 * completions, Anthropic Messages and the OpenAI Responses API: what it
 * reads from a request body, and every event, answer and error it sends.
 * The pacing, framing and faults that all three share are mock_stream.c's. */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "proxy/log.h"
#include "tools/mock/mock.h"

#define MOCK_EVENT_MAX		4096	/* one token event; the model is capped */
#define MOCK_API_STACK		2048	/* events and bodies start on the stack */

static const char mock_chat_done[] = "data: [DONE]\n\n";
static const char mock_chat_error[] = "event: error\ndata: {\"error\":"
    "{\"message\":\"mock failure\",\"type\":\"server_error\"}}\n\n";
static const char mock_messages_block_start[] = "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
    "{\"type\":\"text\",\"text\":\"\"}}\n\n";
static const char mock_messages_ping[] = "event: ping\n"
    "data: {\"type\":\"ping\"}\n\n";
static const char mock_messages_block_stop[] = "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
static const char mock_messages_stop[] = "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";
static const char mock_messages_error[] = "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
    "\"message\":\"Overloaded\"}}\n\n";

/* The "api" of the records for an endpoint that generates, else NULL. */
const char *
mock_endpoint_api(enum mock_endpoint ep)
{
	switch (ep) {
	case MOCK_EP_CHAT:
		return "chat";
	case MOCK_EP_MESSAGES:
		return "messages";
	case MOCK_EP_RESPONSES:
		return "responses";
	case MOCK_EP_NOT_FOUND:
	case MOCK_EP_MODELS:
	case MOCK_EP_ECHO:
	case MOCK_EP_GRPC:
		break;
	}
	return NULL;
}

/* Counts blank-separated words: the mock's idea of prompt tokens. */
static unsigned
mock_count_words(const char *s)
{
	unsigned	 n = 0;
	int		 in_word = 0;

	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			in_word = 0;
		else if (!in_word) {
			in_word = 1;
			n++;
		}
	}
	return n;
}

/* Counts the words of a content: a string, or the "text" of each part. */
static unsigned
mock_count_content(const cJSON *content)
{
	const cJSON	*part, *text;
	unsigned	 n = 0;

	if (cJSON_IsString(content))
		return mock_count_words(content->valuestring);
	if (!cJSON_IsArray(content))
		return 0;
	cJSON_ArrayForEach(part, content) {
		text = cJSON_GetObjectItemCaseSensitive(part, "text");
		if (cJSON_IsString(text))
			n += mock_count_words(text->valuestring);
	}
	return n;
}

/* Counts the words of every message's content (or of a bare string item). */
static unsigned
mock_count_messages(const cJSON *messages)
{
	const cJSON	*m;
	unsigned	 n = 0;

	cJSON_ArrayForEach(m, messages) {
		if (cJSON_IsString(m))
			n += mock_count_words(m->valuestring);
		else
			n += mock_count_content(
			    cJSON_GetObjectItemCaseSensitive(m, "content"));
	}
	return n;
}

/* Whether a member is absent or JSON null. */
static int
mock_absent(const cJSON *v)
{
	return v == NULL || cJSON_IsNull(v);
}

/*
 * Reads what the mock needs from a request body: model and stream for
 * every API, stream_options.include_usage for chat, and the prompt's words
 * (messages; system for Messages; input and instructions for Responses),
 * at least 1, as its prompt tokens. -1 with err for a 400.
 */
int
mock_api_prepare(struct mock_conn *c, const char *json, size_t len,
    const char **err)
{
	struct mock_resp	*r = &c->resp;
	cJSON			*root;
	const cJSON		*v, *opts;
	const char		*name = MOCK_MODEL;
	unsigned		 words = 0;

	if ((root = cJSON_ParseWithLength(json, len)) == NULL ||
	    !cJSON_IsObject(root)) {
		*err = "request body is not a JSON object";
		goto fail;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (!mock_absent(v)) {
		if (!cJSON_IsString(v)) {
			*err = "model: expected a string";
			goto fail;
		}
		name = v->valuestring;
		if (strlen(name) > MOCK_MAX_MODEL_LEN) {
			*err = "model: longer than 256 bytes";
			goto fail;
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "stream");
	if (!mock_absent(v) && !cJSON_IsBool(v)) {
		*err = "stream: expected true or false";
		goto fail;
	}
	r->stream = cJSON_IsTrue(v);

	if (r->endpoint == MOCK_EP_CHAT || r->endpoint == MOCK_EP_MESSAGES) {
		v = cJSON_GetObjectItemCaseSensitive(root, "messages");
		if (!mock_absent(v) && !cJSON_IsArray(v)) {
			*err = "messages: expected an array";
			goto fail;
		}
		if (cJSON_IsArray(v))
			words += mock_count_messages(v);
	}
	switch (r->endpoint) {
	case MOCK_EP_CHAT:
		opts = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
		if (cJSON_IsObject(opts))
			r->include_usage = cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(opts,
			    "include_usage"));
		break;
	case MOCK_EP_MESSAGES:
		v = cJSON_GetObjectItemCaseSensitive(root, "system");
		if (!mock_absent(v) && !cJSON_IsString(v) && !cJSON_IsArray(v)) {
			*err = "system: expected a string or an array";
			goto fail;
		}
		words += mock_count_content(v);
		v = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
		if (!mock_absent(v) && (!cJSON_IsNumber(v) ||
		    v->valuedouble < 1 || v->valuedouble > 1e9 ||
		    v->valuedouble != (double)(long)v->valuedouble)) {
			*err = "max_tokens: expected a positive integer";
			goto fail;
		}
		break;
	case MOCK_EP_RESPONSES:
		v = cJSON_GetObjectItemCaseSensitive(root, "input");
		if (cJSON_IsString(v))
			words += mock_count_words(v->valuestring);
		else if (cJSON_IsArray(v))
			words += mock_count_messages(v);
		else if (!mock_absent(v)) {
			*err = "input: expected a string or an array";
			goto fail;
		}
		v = cJSON_GetObjectItemCaseSensitive(root, "instructions");
		if (cJSON_IsString(v))
			words += mock_count_words(v->valuestring);
		else if (!mock_absent(v)) {
			*err = "instructions: expected a string";
			goto fail;
		}
		break;
	default:
		break;
	}
	r->prompt_tokens = words > 0 ? words : 1;
	if ((r->model_off = mock_req_save(c, name, strlen(name))) == -1) {
		*err = "out of memory";
		goto fail;
	}
	r->prepared = 1;
	cJSON_Delete(root);
	return 0;
fail:
	cJSON_Delete(root);
	return -1;
}

/* The model of the answer, as the request named it. */
static const char *
mock_api_model(struct mock_conn *c)
{
	return mock_req_str(c, c->resp.model_off);
}

/* The id of the Responses output message: msg_ and the response's number. */
static void
mock_api_item_id(struct mock_conn *c, char *buf, size_t len)
{
	/* r->id is "resp_mock<hex>". */
	snprintf(buf, len, "msg_%s", c->resp.id + 5);
}

/* Writes "tok1 tok2 … tokN " as a JSON string; the tokens need no escaping. */
static void
mock_api_text(struct jsonw *w, unsigned n)
{
	char		 tok[32];
	unsigned	 i;
	int		 len;

	jsonw_raw(w, "\"", 1);
	for (i = 1; i <= n; i++) {
		len = snprintf(tok, sizeof(tok), "tok%u ", i);
		jsonw_append(w, tok, (size_t)len);
	}
	jsonw_append(w, "\"", 1);
}

/* Starts the SSE event "event: NAME\ndata: {"type":"NAME"" in w. */
static void
mock_api_event_open(struct jsonw *w, const char *name)
{
	jsonw_reset(w);
	jsonw_append(w, "event: ", 7);
	jsonw_append(w, name, strlen(name));
	jsonw_append(w, "\ndata: ", 7);
	jsonw_obj_open(w);
	jsonw_kstr(w, "type", name);
}

/* Ends the event in w and sends it as one chunk; -1 if it could not be
 * built (out of memory), and then nothing is sent. */
static int
mock_api_event_send(struct mock_conn *c, struct jsonw *w)
{
	jsonw_obj_close(w);
	jsonw_append(w, "\n\n", 2);
	if (w->oom)
		return -1;
	mock_stream_emit(c, w->buf, w->len);
	return 0;
}

/* Sends the Responses sequence_number member and counts the event. */
static void
mock_api_seq(struct mock_conn *c, struct jsonw *w)
{
	jsonw_kuint(w, "sequence_number", c->resp.seq++);
}

/* Writes the Anthropic message object: streaming's empty start, or the
 * whole answer of n tokens. */
static void
mock_api_message_obj(struct mock_conn *c, struct jsonw *w, int start,
    unsigned n)
{
	struct mock_resp	*r = &c->resp;

	jsonw_obj_open(w);
	jsonw_kstr(w, "id", r->id);
	jsonw_kstr(w, "type", "message");
	jsonw_kstr(w, "role", "assistant");
	jsonw_kstr(w, "model", mock_api_model(c));
	jsonw_lkey(w, "content");
	jsonw_arr_open(w);
	if (!start) {
		jsonw_obj_open(w);
		jsonw_kstr(w, "type", "text");
		jsonw_lkey(w, "text");
		mock_api_text(w, n);
		jsonw_obj_close(w);
	}
	jsonw_arr_close(w);
	jsonw_kstr(w, "stop_reason", start ? NULL : "end_turn");
	jsonw_kstr(w, "stop_sequence", NULL);
	jsonw_lkey(w, "usage");
	jsonw_obj_open(w);
	jsonw_kuint(w, "input_tokens", r->prompt_tokens);
	jsonw_kuint(w, "output_tokens", start ? 1 : n);
	jsonw_obj_close(w);
	jsonw_obj_close(w);
}

/* Writes the Responses output message: in progress and empty, or done
 * with the text of n tokens. */
static void
mock_api_response_item(struct mock_conn *c, struct jsonw *w, int done,
    unsigned n)
{
	char	 item_id[64];

	mock_api_item_id(c, item_id, sizeof(item_id));
	jsonw_obj_open(w);
	jsonw_kstr(w, "id", item_id);
	jsonw_kstr(w, "type", "message");
	jsonw_kstr(w, "status", done ? "completed" : "in_progress");
	jsonw_kstr(w, "role", "assistant");
	jsonw_lkey(w, "content");
	jsonw_arr_open(w);
	if (done) {
		jsonw_obj_open(w);
		jsonw_kstr(w, "type", "output_text");
		jsonw_lkey(w, "text");
		mock_api_text(w, n);
		jsonw_lkey(w, "annotations");
		jsonw_arr_open(w);
		jsonw_arr_close(w);
		jsonw_obj_close(w);
	}
	jsonw_arr_close(w);
	jsonw_obj_close(w);
}

/* Writes the Responses object: in progress (no output, usage null) or
 * completed with n tokens and its usage. */
static void
mock_api_response_obj(struct mock_conn *c, struct jsonw *w, int done,
    unsigned n)
{
	struct mock_resp	*r = &c->resp;

	jsonw_obj_open(w);
	jsonw_kstr(w, "id", r->id);
	jsonw_kstr(w, "object", "response");
	jsonw_kint(w, "created_at", (int64_t)r->created);
	jsonw_kstr(w, "status", done ? "completed" : "in_progress");
	jsonw_lkey(w, "error");
	jsonw_null(w);
	jsonw_lkey(w, "incomplete_details");
	jsonw_null(w);
	jsonw_kstr(w, "model", mock_api_model(c));
	jsonw_lkey(w, "output");
	jsonw_arr_open(w);
	if (done)
		mock_api_response_item(c, w, 1, n);
	jsonw_arr_close(w);
	jsonw_lkey(w, "usage");
	if (done) {
		jsonw_obj_open(w);
		jsonw_kuint(w, "input_tokens", r->prompt_tokens);
		jsonw_kuint(w, "output_tokens", n);
		jsonw_kuint(w, "total_tokens", (uint64_t)r->prompt_tokens + n);
		jsonw_lkey(w, "output_tokens_details");
		jsonw_obj_open(w);
		jsonw_kuint(w, "reasoning_tokens", 0);
		jsonw_obj_close(w);
		jsonw_obj_close(w);
	} else
		jsonw_null(w);
	jsonw_obj_close(w);
}

/* Builds the part of every chat chunk before "choices", once per stream. */
static int
mock_api_chat_prefix(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	struct jsonw		 w;
	char			 stack[MOCK_API_STACK];
	int64_t			 off;

	jsonw_init(&w, stack, sizeof(stack));
	jsonw_obj_open(&w);
	jsonw_kstr(&w, "id", r->id);
	jsonw_kstr(&w, "object", "chat.completion.chunk");
	jsonw_kint(&w, "created", (int64_t)r->created);
	jsonw_kstr(&w, "model", mock_api_model(c));
	off = w.oom ? -1 : mock_req_save(c, w.buf, w.len);
	jsonw_free(&w);
	if (off == -1)
		return -1;
	r->prefix_off = (uint32_t)off;
	r->prefix_len = (uint32_t)strlen(c->req.arena + off);
	return 0;
}

/* Prepares what every event of a stream repeats; -1 when out of memory. */
int
mock_api_stream_setup(struct mock_conn *c)
{
	if (c->resp.endpoint == MOCK_EP_CHAT)
		return mock_api_chat_prefix(c);
	return 0;
}

/*
 * Sends the events that precede the first token: Anthropic's message_start,
 * content_block_start and ping; the Responses API's response.created,
 * response.in_progress, response.output_item.added and
 * response.content_part.added; nothing for chat. Once per stream.
 */
int
mock_api_open(struct mock_conn *c)
{
	struct mock_resp	*r = &c->resp;
	struct jsonw		 w;
	char			 stack[MOCK_API_STACK], item_id[64];
	int			 rc = -1;

	r->opened = 1;
	if (r->endpoint == MOCK_EP_CHAT)
		return 0;
	jsonw_init(&w, stack, sizeof(stack));
	if (r->endpoint == MOCK_EP_MESSAGES) {
		mock_api_event_open(&w, "message_start");
		jsonw_lkey(&w, "message");
		mock_api_message_obj(c, &w, 1, 0);
		if (mock_api_event_send(c, &w) == -1)
			goto out;
		mock_stream_emit(c, mock_messages_block_start,
		    sizeof(mock_messages_block_start) - 1);
		mock_stream_emit(c, mock_messages_ping,
		    sizeof(mock_messages_ping) - 1);
		rc = 0;
		goto out;
	}

	mock_api_item_id(c, item_id, sizeof(item_id));
	mock_api_event_open(&w, "response.created");
	mock_api_seq(c, &w);
	jsonw_lkey(&w, "response");
	mock_api_response_obj(c, &w, 0, 0);
	if (mock_api_event_send(c, &w) == -1)
		goto out;
	mock_api_event_open(&w, "response.in_progress");
	mock_api_seq(c, &w);
	jsonw_lkey(&w, "response");
	mock_api_response_obj(c, &w, 0, 0);
	if (mock_api_event_send(c, &w) == -1)
		goto out;
	mock_api_event_open(&w, "response.output_item.added");
	mock_api_seq(c, &w);
	jsonw_kint(&w, "output_index", 0);
	jsonw_lkey(&w, "item");
	mock_api_response_item(c, &w, 0, 0);
	if (mock_api_event_send(c, &w) == -1)
		goto out;
	mock_api_event_open(&w, "response.content_part.added");
	mock_api_seq(c, &w);
	jsonw_kstr(&w, "item_id", item_id);
	jsonw_kint(&w, "output_index", 0);
	jsonw_kint(&w, "content_index", 0);
	jsonw_lkey(&w, "part");
	jsonw_obj_open(&w);
	jsonw_kstr(&w, "type", "output_text");
	jsonw_kstr(&w, "text", "");
	jsonw_lkey(&w, "annotations");
	jsonw_arr_open(&w);
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
	rc = mock_api_event_send(c, &w);
out:
	jsonw_free(&w);
	return rc;
}

/* Sends the event of token k (1, 2, …): a chat chunk (the first one names
 * the role), a content_block_delta, or a response.output_text.delta. */
void
mock_api_token(struct mock_conn *c, unsigned k)
{
	struct mock_resp	*r = &c->resp;
	char			 ev[MOCK_EVENT_MAX], item_id[64];
	int			 n;

	switch (r->endpoint) {
	case MOCK_EP_MESSAGES:
		n = snprintf(ev, sizeof(ev), "event: content_block_delta\n"
		    "data: {\"type\":\"content_block_delta\",\"index\":0,"
		    "\"delta\":{\"type\":\"text_delta\",\"text\":\"tok%u \"}}"
		    "\n\n", k);
		break;
	case MOCK_EP_RESPONSES:
		mock_api_item_id(c, item_id, sizeof(item_id));
		n = snprintf(ev, sizeof(ev), "event: response.output_text.delta"
		    "\ndata: {\"type\":\"response.output_text.delta\","
		    "\"delta\":\"tok%u \",\"sequence_number\":%u,\"item_id\":"
		    "\"%s\",\"output_index\":0,\"content_index\":0,"
		    "\"logprobs\":[]}\n\n", k, r->seq++, item_id);
		break;
	default:
		n = snprintf(ev, sizeof(ev), "data: %s,\"choices\":[{\"index\":0,"
		    "\"delta\":{%s\"content\":\"tok%u \"},\"finish_reason\":"
		    "null}]}\n\n", c->req.arena + r->prefix_off,
		    k == 1 ? "\"role\":\"assistant\"," : "", k);
		break;
	}
	if (n < 0 || (size_t)n >= sizeof(ev))
		abort();	/* the model name is capped well below this */
	mock_stream_emit(c, ev, (size_t)n);
}

/* Sends chat's stop event, its usage event when asked for, and [DONE]. */
static void
mock_api_chat_tail(struct mock_conn *c, unsigned n)
{
	struct mock_resp	*r = &c->resp;
	const char		*prefix = c->req.arena + r->prefix_off;
	char			 ev[MOCK_EVENT_MAX];
	int			 len;

	len = snprintf(ev, sizeof(ev), "data: %s,\"choices\":[{\"index\":0,"
	    "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", prefix);
	if (len < 0 || (size_t)len >= sizeof(ev))
		abort();
	mock_stream_emit(c, ev, (size_t)len);
	if (r->include_usage) {
		len = snprintf(ev, sizeof(ev), "data: %s,\"choices\":[],"
		    "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u,"
		    "\"total_tokens\":%u}}\n\n", prefix, r->prompt_tokens, n,
		    r->prompt_tokens + n);
		if (len < 0 || (size_t)len >= sizeof(ev))
			abort();
		mock_stream_emit(c, ev, (size_t)len);
	}
	mock_stream_emit(c, mock_chat_done, sizeof(mock_chat_done) - 1);
}

/* Sends Anthropic's content_block_stop, message_delta and message_stop. */
static void
mock_api_messages_tail(struct mock_conn *c, unsigned n)
{
	char	 ev[MOCK_EVENT_MAX];
	int	 len;

	mock_stream_emit(c, mock_messages_block_stop,
	    sizeof(mock_messages_block_stop) - 1);
	len = snprintf(ev, sizeof(ev), "event: message_delta\n"
	    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
	    "\"end_turn\",\"stop_sequence\":null},\"usage\":"
	    "{\"output_tokens\":%u}}\n\n", n);
	if (len < 0 || (size_t)len >= sizeof(ev))
		abort();
	mock_stream_emit(c, ev, (size_t)len);
	mock_stream_emit(c, mock_messages_stop, sizeof(mock_messages_stop) - 1);
}

/* Sends the Responses API's closing events, each with the whole text:
 * output_text.done, content_part.done, output_item.done, completed. */
static int
mock_api_responses_tail(struct mock_conn *c, unsigned n)
{
	struct jsonw	 w;
	char		 stack[MOCK_API_STACK], item_id[64];
	int		 rc = -1;

	mock_api_item_id(c, item_id, sizeof(item_id));
	jsonw_init(&w, stack, sizeof(stack));
	mock_api_event_open(&w, "response.output_text.done");
	mock_api_seq(c, &w);
	jsonw_kstr(&w, "item_id", item_id);
	jsonw_kint(&w, "output_index", 0);
	jsonw_kint(&w, "content_index", 0);
	jsonw_lkey(&w, "text");
	mock_api_text(&w, n);
	jsonw_lkey(&w, "logprobs");
	jsonw_arr_open(&w);
	jsonw_arr_close(&w);
	if (mock_api_event_send(c, &w) == -1)
		goto out;
	mock_api_event_open(&w, "response.content_part.done");
	mock_api_seq(c, &w);
	jsonw_kstr(&w, "item_id", item_id);
	jsonw_kint(&w, "output_index", 0);
	jsonw_kint(&w, "content_index", 0);
	jsonw_lkey(&w, "part");
	jsonw_obj_open(&w);
	jsonw_kstr(&w, "type", "output_text");
	jsonw_lkey(&w, "text");
	mock_api_text(&w, n);
	jsonw_lkey(&w, "annotations");
	jsonw_arr_open(&w);
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
	if (mock_api_event_send(c, &w) == -1)
		goto out;
	mock_api_event_open(&w, "response.output_item.done");
	mock_api_seq(c, &w);
	jsonw_kint(&w, "output_index", 0);
	jsonw_lkey(&w, "item");
	mock_api_response_item(c, &w, 1, n);
	if (mock_api_event_send(c, &w) == -1)
		goto out;
	mock_api_event_open(&w, "response.completed");
	mock_api_seq(c, &w);
	jsonw_lkey(&w, "response");
	mock_api_response_obj(c, &w, 1, n);
	rc = mock_api_event_send(c, &w);
out:
	jsonw_free(&w);
	return rc;
}

/* Sends the events after the last token of n; -1 when out of memory. */
int
mock_api_tail(struct mock_conn *c, unsigned n)
{
	switch (c->resp.endpoint) {
	case MOCK_EP_MESSAGES:
		mock_api_messages_tail(c, n);
		return 0;
	case MOCK_EP_RESPONSES:
		return mock_api_responses_tail(c, n);
	default:
		mock_api_chat_tail(c, n);
		return 0;
	}
}

/* Sends the sse_error_after event in the API's own error shape. */
void
mock_api_error_event(struct mock_conn *c)
{
	char	 ev[MOCK_EVENT_MAX];
	int	 n;

	switch (c->resp.endpoint) {
	case MOCK_EP_MESSAGES:
		mock_stream_emit(c, mock_messages_error,
		    sizeof(mock_messages_error) - 1);
		break;
	case MOCK_EP_RESPONSES:
		n = snprintf(ev, sizeof(ev), "event: error\ndata: {\"type\":"
		    "\"error\",\"code\":\"server_error\",\"message\":"
		    "\"mock failure\",\"param\":null,\"sequence_number\":%u}"
		    "\n\n", c->resp.seq++);
		mock_stream_emit(c, ev, (size_t)n);
		break;
	default:
		mock_stream_emit(c, mock_chat_error,
		    sizeof(mock_chat_error) - 1);
		break;
	}
}

/* Builds the chat.completion object of n tokens. */
static void
mock_api_chat_body(struct mock_conn *c, struct jsonw *w, unsigned n)
{
	struct mock_resp	*r = &c->resp;

	jsonw_obj_open(w);
	jsonw_kstr(w, "id", r->id);
	jsonw_kstr(w, "object", "chat.completion");
	jsonw_kint(w, "created", (int64_t)r->created);
	jsonw_kstr(w, "model", mock_api_model(c));
	jsonw_lkey(w, "choices");
	jsonw_arr_open(w);
	jsonw_obj_open(w);
	jsonw_kint(w, "index", 0);
	jsonw_lkey(w, "message");
	jsonw_obj_open(w);
	jsonw_kstr(w, "role", "assistant");
	jsonw_lkey(w, "content");
	mock_api_text(w, n);
	jsonw_obj_close(w);
	jsonw_lkey(w, "logprobs");
	jsonw_null(w);
	jsonw_kstr(w, "finish_reason", "stop");
	jsonw_obj_close(w);
	jsonw_arr_close(w);
	jsonw_lkey(w, "usage");
	jsonw_obj_open(w);
	jsonw_kuint(w, "prompt_tokens", r->prompt_tokens);
	jsonw_kuint(w, "completion_tokens", n);
	jsonw_kuint(w, "total_tokens", (uint64_t)r->prompt_tokens + n);
	jsonw_obj_close(w);
	jsonw_obj_close(w);
}

/* Builds the non-streaming answer of n tokens in the endpoint's shape. */
void
mock_api_body(struct mock_conn *c, struct jsonw *w, unsigned n)
{
	switch (c->resp.endpoint) {
	case MOCK_EP_MESSAGES:
		mock_api_message_obj(c, w, 0, n);
		break;
	case MOCK_EP_RESPONSES:
		mock_api_response_obj(c, w, 1, n);
		break;
	default:
		mock_api_chat_body(c, w, n);
		break;
	}
}

/* Anthropic's error type for an HTTP status. */
static const char *
mock_api_anthropic_error_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 402:
		return "billing_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 504:
		return "timeout_error";
	case 529:
		return "overloaded_error";
	}
	return status >= 500 ? "api_error" : "invalid_request_error";
}

/*
 * Builds an error body in the endpoint's shape: Anthropic's
 * {"type":"error","error":{"type","message"}} for Messages, OpenAI's
 * {"error":{"message","type","param","code"}} for everything else.
 */
void
mock_api_error_json(struct mock_conn *c, struct jsonw *w, int status,
    const char *message)
{
	const char	*type = "invalid_request_error", *code = NULL;

	jsonw_obj_open(w);
	if (c->resp.endpoint == MOCK_EP_MESSAGES) {
		jsonw_kstr(w, "type", "error");
		jsonw_lkey(w, "error");
		jsonw_obj_open(w);
		jsonw_kstr(w, "type", mock_api_anthropic_error_type(status));
		jsonw_kstr(w, "message", message);
		jsonw_obj_close(w);
		jsonw_obj_close(w);
		return;
	}
	if (status == 429) {
		type = "requests";
		code = "rate_limit_exceeded";
	} else if (status >= 500)
		type = "server_error";
	else if (status == 404)
		code = "unknown_url";
	jsonw_lkey(w, "error");
	jsonw_obj_open(w);
	jsonw_kstr(w, "message", message);
	jsonw_kstr(w, "type", type);
	jsonw_lkey(w, "param");
	jsonw_null(w);
	jsonw_kstr(w, "code", code);
	jsonw_obj_close(w);
	jsonw_obj_close(w);
}

/* Answers a non-streaming request whose sse_error_after fault fired: 529
 * overloaded_error for Messages, 500 server_error for the OpenAI APIs. */
void
mock_api_fail(struct mock_conn *c)
{
	if (c->resp.endpoint == MOCK_EP_MESSAGES)
		mock_http_error(c, 529, "Overloaded", NULL, MOCK_OUTCOME_FAULT);
	else
		mock_http_error(c, 500, "mock failure", NULL,
		    MOCK_OUTCOME_FAULT);
}
