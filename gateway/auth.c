/*
 * auth.c - API tokens and the gateway's key cache.
 *
 * Tokens are "fsk_" + base64url(32 random bytes from RAND_bytes); only their
 * SHA-256 is stored.  The cache holds every active key's hash in memory so
 * authentication reads no disk; the gateway reloads it after any change to
 * keys or tenants, so a revocation takes effect on the next request.
 * INVARIANT: hashes are compared with CRYPTO_memcmp (constant time) and the
 * token itself is never stored or logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "util.h"

struct auth_entry {
	uint8_t hash[32];
	struct principal p;
};

struct auth_cache {
	pthread_rwlock_t lock;
	struct auth_entry *entries;
	size_t n, cap;
};

static const char *const scope_names[] = { "none", "invoke", "deploy", "owner", "admin" };

const char *
scope_name(enum scope s)
{
	return (unsigned)s < ARRAY_SIZE(scope_names) ? scope_names[s] : "none";
}

enum scope
scope_parse(const char *s)
{
	for (size_t i = 1; i < ARRAY_SIZE(scope_names); i++)
		if (strcmp(s, scope_names[i]) == 0)
			return (enum scope)i;
	return SCOPE_NONE;
}

/* SHA256() looks the algorithm up in OpenSSL's provider store on every
 * call, under locks the event loops share (about 1 us, more contended:
 * 6% of a warm invocation's CPU).  The algorithm is fetched once and each
 * thread keeps a digest context of its own, freed when the thread ends. */
static EVP_MD *sha256_md;
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MD_CTX *md_ctx;

static void
md_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void
md_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (pthread_key_create(&md_key, md_ctx_free) != 0)
		abort();
}

void
auth_token_hash(const char *token, uint8_t hash[32])
{
	unsigned len = 0;

	pthread_once(&md_once, md_init);
	if (!md_ctx && sha256_md && (md_ctx = EVP_MD_CTX_new()) != NULL)
		(void)pthread_setspecific(md_key, md_ctx);
	if (!md_ctx || EVP_DigestInit_ex2(md_ctx, sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(md_ctx, token, strlen(token)) != 1 ||
	    EVP_DigestFinal_ex(md_ctx, hash, &len) != 1 || len != 32)
		SHA256((const unsigned char *)token, strlen(token), hash); /* the slow way */
}

int
auth_token_new(char token[64], uint8_t hash[32], char id[32])
{
	uint8_t raw[32], idraw[8];
	unsigned char b64[48];
	int len;

	if (RAND_bytes(raw, sizeof(raw)) != 1 || RAND_bytes(idraw, sizeof(idraw)) != 1)
		return -EIO;
	len = EVP_EncodeBlock(b64, raw, sizeof(raw)); /* 44 chars with one '=' */
	while (len > 0 && b64[len - 1] == '=')
		len--;
	for (int i = 0; i < len; i++) {
		if (b64[i] == '+')
			b64[i] = '-';
		else if (b64[i] == '/')
			b64[i] = '_';
	}
	b64[len] = 0;
	(void)str_printf(token, 64, "fsk_%s", (char *)b64);
	auth_token_hash(token, hash);
	{
		char hex[2 * sizeof(idraw) + 1];

		hex_encode(idraw, sizeof(idraw), hex);
		(void)str_printf(id, 32, "key_%s", hex);
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

static int
add_key(const struct store_key *k, void *ud)
{
	struct auth_cache *c = ud;
	struct auth_entry *e;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct auth_entry *ne = realloc(c->entries, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		c->entries = ne;
		c->cap = cap;
	}
	e = &c->entries[c->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->hash, k->hash, 32);
	e->p.scope = scope_parse(k->scope);
	e->p.tenant_id = k->tenant_id;
	(void)str_copy(e->p.tenant, sizeof(e->p.tenant), k->tenant);
	(void)str_copy(e->p.key_id, sizeof(e->p.key_id), k->id);
	return 0;
}

int
auth_cache_reload(struct auth_cache *c, struct store *s)
{
	struct auth_cache fresh = { 0 };
	int r;

	r = store_key_foreach_active(s, add_key, &fresh);
	if (r < 0) {
		free(fresh.entries);
		return r;
	}
	pthread_rwlock_wrlock(&c->lock);
	free(c->entries);
	c->entries = fresh.entries;
	c->n = fresh.n;
	c->cap = fresh.cap;
	pthread_rwlock_unlock(&c->lock);
	return 0;
}

int
auth_cache_new(struct store *s, struct auth_cache **out)
{
	struct auth_cache *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	pthread_rwlock_init(&c->lock, NULL);
	r = auth_cache_reload(c, s);
	if (r < 0) {
		auth_cache_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void
auth_cache_free(struct auth_cache *c)
{
	if (!c)
		return;
	free(c->entries);
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

int
auth_lookup(struct auth_cache *c, const char *token, struct principal *p)
{
	uint8_t h[32];
	int found = -EACCES;

	if (!str_startswith(token, "fsk_") || strlen(token) > 128)
		return -EACCES;
	auth_token_hash(token, h);
	pthread_rwlock_rdlock(&c->lock);
	/* Scan all entries without early exit: the time taken does not
	 * depend on where (or whether) the hash matched. */
	for (size_t i = 0; i < c->n; i++) {
		if (CRYPTO_memcmp(c->entries[i].hash, h, 32) == 0) {
			*p = c->entries[i].p;
			found = 0;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return found;
}

static int
has_admin(const struct store_key *k, void *ud)
{
	if (strcmp(k->scope, "admin") == 0)
		*(bool *)ud = true;
	return 0;
}

int
auth_bootstrap_admin(struct store *s, const char *path, bool *created)
{
	struct store_key k = { 0 };
	char token[64], line[80];
	bool found = false;
	int fd, r;

	*created = false;
	r = store_key_foreach_active(s, has_admin, &found);
	if (r < 0 || found)
		return r;
	r = auth_token_new(token, k.hash, k.id);
	if (r < 0)
		return r;
	(void)str_copy(k.scope, sizeof(k.scope), "admin");
	(void)str_copy(k.name, sizeof(k.name), "bootstrap");
	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	(void)str_printf(line, sizeof(line), "%s\n", token);
	r = write_full(fd, line, strlen(line));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(line, sizeof(line));
	if (r < 0)
		return r;
	r = store_key_insert(s, &k);
	if (r < 0) {
		(void)unlink(path);
		return r;
	}
	*created = true;
	return 0;
}
