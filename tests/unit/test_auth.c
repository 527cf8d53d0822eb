/* Unit tests of gateway/auth.c: tokens, hashing, cache, revocation. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "tap.h"
#include "util.h"

int
main(void)
{
	char dir[] = "/tmp/faasd-auth-XXXXXX", path[256], tokpath[256], diag[256];
	char token[64], token2[64], id[32], id2[32];
	uint8_t hash[32], hash2[32];
	struct store *s;
	struct auth_cache *c;
	struct principal p;
	struct store_key k = { 0 };
	struct store_tenant t = { .max_functions = 1, .max_instances = 1, .max_memory_mb = 128 };
	struct stat st;
	bool created;

	is_int(auth_token_new(token, hash, id), 0, "new token");
	ok(strncmp(token, "fsk_", 4) == 0, "token has the fsk_ prefix");
	is_int(strlen(token), 4 + 43, "token length");
	ok(strncmp(id, "key_", 4) == 0 && strlen(id) == 20, "key id shape");
	auth_token_new(token2, hash2, id2);
	ok(strcmp(token, token2) != 0 && memcmp(hash, hash2, 32) != 0, "tokens differ");
	ok(strchr(token, '+') == NULL && strchr(token, '/') == NULL, "base64url alphabet");

	mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/db", dir);
	is_int(store_open(path, &s, diag, sizeof(diag)), 0, "open store");
	snprintf(tokpath, sizeof(tokpath), "%s/admin.token", dir);
	is_int(auth_bootstrap_admin(s, tokpath, &created), 0, "bootstrap admin");
	ok(created, "admin token created");
	stat(tokpath, &st);
	is_int(st.st_mode & 0777, 0600, "admin token file is 0600");
	is_int(auth_bootstrap_admin(s, tokpath, &created), 0, "bootstrap again");
	ok(!created, "no second admin token");

	snprintf(t.name, sizeof(t.name), "acme");
	store_tenant_create(s, &t, 200000, 100);
	memcpy(k.hash, hash, 32);
	memcpy(k.id, id, sizeof(id));
	k.tenant_id = t.id;
	snprintf(k.scope, sizeof(k.scope), "deploy");
	store_key_insert(s, &k);
	is_int(auth_cache_new(s, &c), 0, "cache built");
	is_int(auth_lookup(c, token, &p), 0, "known token");
	is_int(p.scope, SCOPE_DEPLOY, "scope");
	is_str(p.tenant, "acme", "tenant");
	is_int(auth_lookup(c, token2, &p), -EACCES, "unknown token");
	is_int(auth_lookup(c, "Bearer x", &p), -EACCES, "garbage");
	token[10] ^= 1;
	is_int(auth_lookup(c, token, &p), -EACCES, "one changed character");
	token[10] ^= 1;
	store_key_revoke(s, t.id, id);
	is_int(auth_lookup(c, token, &p), 0, "still cached before reload");
	auth_cache_reload(c, s);
	is_int(auth_lookup(c, token, &p), -EACCES, "revoked after reload");
	{
		char *text;
		size_t len;

		read_file_bounded(tokpath, 4096, &text, &len);
		text[len - 1] = 0;
		is_int(auth_lookup(c, text, &p), 0, "admin token from the file works");
		is_int(p.scope, SCOPE_ADMIN, "admin scope");
		free(text);
	}
	is_int(scope_parse("owner"), SCOPE_OWNER, "scope_parse");
	is_int(scope_parse("root"), SCOPE_NONE, "unknown scope");
	auth_cache_free(c);
	store_close(s);
	return done();
}
