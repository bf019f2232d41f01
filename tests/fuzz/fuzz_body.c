/* fuzz_body: a request body through session_body_read(), the function
 * that decides what the proxy routes a body by, held against cJSON read
 * as Python, JavaScript and Go read JSON: the last member of a name wins.
 * For every input the proxy must either refuse the body or agree:
 *   - read (1): cJSON parses the text; the model is cJSON's last "model"
 *     member, a string equal byte for byte (cJSON's has no NUL cut, as the
 *     proxy refuses those), or absent for both; "model" is named once;
 *     "stream" has the same type for both; the model is UTF-8 with no
 *     control character and at most SESSION_MODEL_MAX bytes;
 *   - not JSON (0): the body is empty or the content type did not say
 *     JSON, and cJSON finds no object with a model in it (the text would route nowhere by model for anyone).
 * A body read with "stream": true then goes through session_usage_inject():
 * the body it writes must be read again by session_body_read() with the
 * same model and stream_options.include_usage true, and cJSON must agree.
 * A disagreement aborts, so the fuzzer keeps the input.
 *
 * Input: byte 0 picks the content type (low 3 bits), the rest is the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>

#include "proxy/jsonr.h"
#include "proxy/jsonw.h"
#include "proxy/session.h"

static const char *const types[8] = {
	"application/json", NULL, "text/plain", "application/json; charset=utf-8",
	"application/x-www-form-urlencoded", "application/vnd.x+json",
	"multipart/form-data; boundary=x", "APPLICATION/JSON",
};

static void
fail(const char *why, const char *body, size_t len)
{
	fprintf(stderr, "fuzz_body: %s (body of %zu bytes)\n", why, len);
	abort();
}

/* cJSON's reading of member name in obj: the last one, and how many. */
static const cJSON *
last_member(const cJSON *obj, const char *name, int *count)
{
	const cJSON	*c, *last = NULL;

	*count = 0;
	for (c = obj->child; c != NULL; c = c->next)
		if (c->string != NULL && strcmp(c->string, name) == 0) {
			last = c;
			(*count)++;
		}
	return last;
}

static int
type_agrees(enum jsonr_type t, const cJSON *v)
{
	switch (t) {
	case JSONR_NONE:	return v == NULL;
	case JSONR_OBJECT:	return cJSON_IsObject(v);
	case JSONR_ARRAY:	return cJSON_IsArray(v);
	case JSONR_STRING:	return cJSON_IsString(v);
	case JSONR_NUMBER:	return cJSON_IsNumber(v);
	case JSONR_TRUE:	return cJSON_IsTrue(v);
	case JSONR_FALSE:	return cJSON_IsFalse(v);
	case JSONR_NULL:	return cJSON_IsNull(v);
	}
	return 0;
}

static void
check_model(const char *model, const char *body, size_t len)
{
	const unsigned char *u = (const unsigned char *)model;
	size_t		 n = strlen(model), i, k;

	if (n > SESSION_MODEL_MAX)
		fail("a model longer than the limit was read", body, len);
	for (i = 0; i < n; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			fail("a model with a control byte was read", body, len);
		if (u[i] >= 0x80) {
			if ((k = jsonw_utf8_len(u + i, n - i)) == 0)
				fail("a model that is not UTF-8 was read", body,
				    len);
			i += k - 1;
		}
	}
}

/* The injected body: read again, the same model, include_usage true. */
static void
check_inject(const char *body, size_t len, const struct jsonr *m,
    const char *model)
{
	struct jsonr		 m2[BODY_NKEYS], v;
	struct body_refusal	 why;
	struct evbuffer		*out = evbuffer_new();
	const char		*t;
	char			*model2 = NULL;
	cJSON			*root;
	const cJSON		*o;
	size_t			 n;
	int			 r, k;

	if (out == NULL)
		return;
	r = session_usage_inject(body, len, m, out);
	if (r == 1) {
		n = evbuffer_get_length(out);
		t = (const char *)evbuffer_pullup(out, -1);
		if (session_body_read(t, n, "application/json", m2, &model2,
		    &why) != 1)
			fail("the injected body is not read again", body, len);
		if ((model == NULL) != (model2 == NULL) ||
		    (model != NULL && strcmp(model, model2) != 0))
			fail("injection changed the model", body, len);
		if (!jsonr_get(&m2[BODY_STREAM_OPTIONS], "include_usage", &v) ||
		    v.type != JSONR_TRUE || m2[BODY_STREAM].type != JSONR_TRUE)
			fail("injection did not set include_usage", body, len);
		root = cJSON_ParseWithLength(t, n);
		o = root ? last_member(root, "stream_options", &k) : NULL;
		if (o == NULL || k != 1 || !cJSON_IsTrue(
		    cJSON_GetObjectItemCaseSensitive(o, "include_usage")))
			fail("cJSON reads no include_usage after injection",
			    body, len);
		cJSON_Delete(root);
		free(model2);
	} else if (r == -1)
		fail("injection failed on a body that was read", body, len);
	else if (m[BODY_STREAM].type == JSONR_TRUE && !(jsonr_get(
	    &m[BODY_STREAM_OPTIONS], "include_usage", &v) &&
	    v.type == JSONR_TRUE))
		fail("no injection where one was due", body, len);
	evbuffer_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonr		 m[BODY_NKEYS];
	struct body_refusal	 why;
	const char		*ct, *body;
	char			*model = NULL, *copy;
	cJSON			*root;
	const cJSON		*cm, *cs;
	size_t			 len;
	int			 r, n;

	if (size < 1)
		return 0;
	ct = types[data[0] & 7];
	len = size - 1;
	/* An exact-size copy, so that a read past the end is caught. */
	if ((copy = malloc(len ? len : 1)) == NULL)
		return 0;
	memcpy(copy, data + 1, len);
	body = copy;
	r = session_body_read(body, len, ct, m, &model, &why);
	if (r == -1) {
		if (why.code == NULL || why.msg[0] == '\0' || model != NULL)
			fail("a refusal without a reason", body, len);
		free(copy);
		return 0;
	}
	root = cJSON_ParseWithLength(body, len);
	if (r == 0) {
		if (model != NULL)
			fail("a model from a body that is not JSON", body, len);
		if (len > 0 && ct != NULL && (strstr(ct, "json") ||
		    strstr(ct, "JSON")))
			fail("a JSON type taken as not JSON", body, len);
		if (cJSON_IsObject(root) && last_member(root, "model", &n))
			fail("no model read where cJSON finds one", body, len);
	} else {
		if (root == NULL)
			fail("read a body cJSON refuses", body, len);
		if (cJSON_IsObject(root)) {
			cm = last_member(root, "model", &n);
			if (n > 1)
				fail("a duplicate model was read", body, len);
			if (cm == NULL ? model != NULL : !cJSON_IsString(cm) ||
			    model == NULL || strcmp(cm->valuestring, model) != 0)
				fail("the model differs from cJSON's last", body,
				    len);
			cs = last_member(root, "stream", &n);
			if (n > 1 || !type_agrees(m[BODY_STREAM].type, cs))
				fail("stream differs from cJSON's last", body,
				    len);
			cs = last_member(root, "stream_options", &n);
			if (n > 1 || !type_agrees(m[BODY_STREAM_OPTIONS].type,
			    cs))
				fail("stream_options differs", body, len);
		} else if (model != NULL)
			fail("a model from a root that is no object", body, len);
		if (model != NULL)
			check_model(model, body, len);
		if (cJSON_IsObject(root))
			check_inject(body, len, m, model);
	}
	cJSON_Delete(root);
	free(model);
	free(copy);
	return 0;
}
