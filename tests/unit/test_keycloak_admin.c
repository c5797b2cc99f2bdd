/* test_keycloak_admin.c — the Keycloak Admin client's pure parts: Location parsing, error
 * bodies, token lifetime, exact user and group picking, Usher-owned attribute merging.
 * Calls against the double: tests/integration/test_clients_keycloak.py; against the real
 * Keycloak 26: tests/conformance/test_clients_keycloak.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "integrations/keycloak_admin.h"

#include <string.h>

static void test_id_from_location(void **state)
{
    (void)state;
    char id[KC_ID_MAX + 1];
    assert_int_equal(kc_id_from_location("http://kc.test/admin/realms/usher/users/"
                                         "5b1c4f0e-0c1d-4a57-9d3c-0c1a8a6f1e2b",
                                         id, sizeof id),
                     0);
    assert_string_equal(id, "5b1c4f0e-0c1d-4a57-9d3c-0c1a8a6f1e2b");
    assert_int_equal(
        kc_id_from_location("https://kc.test/admin/realms/u/users/abc/?x=1#f", id, sizeof id), 0);
    assert_string_equal(id, "abc");
    assert_int_equal(kc_id_from_location(NULL, id, sizeof id), USHER_EINVAL);
    assert_int_equal(kc_id_from_location("", id, sizeof id), USHER_EINVAL);
    assert_int_equal(kc_id_from_location("abc", id, sizeof id), USHER_EINVAL);
    assert_int_equal(kc_id_from_location("http://kc.test/admin/realms/u/users/", id, sizeof id),
                     USHER_EINVAL);
    assert_int_equal(kc_id_from_location("http://kc.test/users/a%2Fb", id, sizeof id),
                     USHER_EINVAL);
    char small[4];
    assert_int_equal(kc_id_from_location("http://kc.test/users/abcdef", small, sizeof small),
                     USHER_EINVAL);
}

static void test_error_parse(void **state)
{
    (void)state;
    struct kc_error e;
    const char *dup[][2] = {
        {"{\"errorMessage\":\"User exists with same username\"}", "username"},
        {"{\"errorMessage\":\"User exists with same email\"}", "email"},
        {"{\"errorMessage\":\"User exists with same username or email\"}", "username or email"},
    };
    for (int i = 0; i < 3; i++) {
        kc_error_parse(409, dup[i][0], strlen(dup[i][0]), &e);
        assert_int_equal(e.http.status, 409);
        assert_string_equal(e.field, dup[i][1]);
    }
    const char one[] = "{\"field\":\"email\",\"errorMessage\":\"error-invalid-email\","
                       "\"params\":[\"email\",\"x\"]}";
    kc_error_parse(400, one, strlen(one), &e);
    assert_string_equal(e.field, "email");
    assert_string_equal(e.message, "error-invalid-email");
    const char many[] = "{\"errors\":[{\"field\":\"firstName\",\"errorMessage\":"
                        "\"error-person-name-invalid-character\"},{\"field\":\"email\"}]}";
    kc_error_parse(400, many, strlen(many), &e);
    assert_string_equal(e.field, "firstName");
    assert_string_equal(e.message, "error-person-name-invalid-character");
    const char oauth[] = "{\"error\":\"unauthorized_client\",\"error_description\":\"Invalid "
                         "client or Invalid client credentials\"}";
    kc_error_parse(401, oauth, strlen(oauth), &e);
    assert_string_equal(e.message, "Invalid client or Invalid client credentials");
    const char nf[] = "{\"error\":\"User not found\"}";
    kc_error_parse(404, nf, strlen(nf), &e);
    assert_string_equal(e.message, "User not found");
    kc_error_parse(500, "not json", 8, &e);
    assert_string_equal(e.message, "");
    assert_string_equal(e.http.excerpt, "not json");
}

static void test_token_lifetime(void **state)
{
    (void)state;
    assert_int_equal(kc_token_lifetime(300), 270);
    assert_int_equal(kc_token_lifetime(61), 31);
    assert_int_equal(kc_token_lifetime(60), 30);
    assert_int_equal(kc_token_lifetime(10), 5);
    assert_int_equal(kc_token_lifetime(0), 0);
    assert_int_equal(kc_token_lifetime(-5), 0);
}

static void test_user_pick_is_exact(void **state)
{
    (void)state;
    json_t *users = json_loads("[{\"id\":\"1\",\"username\":\"alice2\",\"email\":\"x@a.test\"},"
                               "{\"id\":\"2\",\"username\":\"alice\",\"email\":\"Alice@A.test\"}]",
                               0, NULL);
    size_t n = 9;
    const json_t *u = kc_user_pick(users, "username", "ALICE", &n);
    assert_int_equal(n, 1);
    assert_string_equal(json_string_value(json_object_get(u, "id")), "2");
    u = kc_user_pick(users, "email", "alice@a.test", &n);
    assert_string_equal(json_string_value(json_object_get(u, "id")), "2");
    assert_null(kc_user_pick(users, "username", "alic", &n));
    assert_int_equal(n, 0);
    json_decref(users);
}

static const char groups_json[] =
    "[{\"id\":\"g1\",\"name\":\"nextcloud\",\"path\":\"/nextcloud\",\"subGroups\":["
    "  {\"id\":\"g2\",\"name\":\"foggy\",\"path\":\"/nextcloud/foggy\",\"subGroups\":[]}]},"
    " {\"id\":\"g3\",\"name\":\"other\",\"path\":\"/other\",\"subGroups\":["
    "  {\"id\":\"g4\",\"name\":\"foggy\",\"path\":\"/other/foggy\"},"
    "  {\"id\":\"g5\",\"name\":\"nextcloud\",\"path\":\"/other/nextcloud\"}]},"
    " {\"id\":\"g6\",\"name\":\"deep\",\"path\":\"/deep\",\"subGroups\":["
    "  {\"id\":\"g7\",\"name\":\"a\",\"path\":\"/deep/a\",\"subGroups\":["
    "   {\"id\":\"g8\",\"name\":\"only-here\",\"path\":\"/deep/a/only-here\"}]}]}]";

static const char *gid(const json_t *g)
{
    return g ? json_string_value(json_object_get(g, "id")) : NULL;
}

static void test_group_pick(void **state)
{
    (void)state;
    json_t *groups = json_loads(groups_json, 0, NULL);
    assert_non_null(groups);
    bool amb = true;
    assert_string_equal(gid(kc_group_pick(groups, "nextcloud", &amb)), "g1"); /* top first */
    assert_false(amb);
    assert_string_equal(gid(kc_group_pick(groups, "only-here", &amb)), "g8");
    assert_null(kc_group_pick(groups, "foggy", &amb)); /* two subgroups of that name */
    assert_true(amb);
    assert_string_equal(gid(kc_group_pick(groups, "/other/foggy", &amb)), "g4");
    assert_string_equal(gid(kc_group_pick(groups, "/deep/a/only-here", &amb)), "g8");
    assert_null(kc_group_pick(groups, "/foggy", &amb));
    assert_null(kc_group_pick(groups, "Nextcloud", &amb)); /* names are case-sensitive */
    assert_false(amb);
    assert_null(kc_group_pick(groups, "fog", &amb));
    json_decref(groups);
}

static const char *const entitlements[] = {"storage_gb", NULL};

static void test_owned(void **state)
{
    (void)state;
    struct kc_owned_attrs o = kc_owned_attrs_usher(entitlements);
    assert_true(kc_attr_owned(&o, "has_nextcloud"));
    assert_true(kc_attr_owned(&o, "nextcloud_instance"));
    assert_true(kc_attr_owned(&o, "storage_gb"));
    assert_false(kc_attr_owned(&o, "has_"));
    assert_false(kc_attr_owned(&o, "_instance"));
    assert_false(kc_attr_owned(&o, "storage_gb2"));
    assert_false(kc_attr_owned(&o, "locale"));
    assert_false(kc_attr_owned(&o, "phone"));
    struct kc_owned_attrs none = {0};
    assert_false(kc_attr_owned(&none, "has_x"));
}

static void test_merge_keeps_foreign_and_replaces_owned(void **state)
{
    (void)state;
    struct kc_owned_attrs o = kc_owned_attrs_usher(entitlements);
    json_t *current = json_loads("{\"locale\":[\"de\"],\"has_old\":[\"true\"],"
                                 "\"old_instance\":[\"https://old\"],\"storage_gb\":[\"5\"],"
                                 "\"department\":[\"a\",\"b\"]}",
                                 0, NULL);
    json_t *desired = json_loads("{\"has_nextcloud\":\"true\",\"nextcloud_instance\":"
                                 "\"https://foggy.test\",\"storage_gb\":100}",
                                 0, NULL);
    json_t *merged = NULL;
    assert_int_equal(kc_attrs_merge(current, &o, desired, &merged), 0);
    json_t *want = json_loads("{\"locale\":[\"de\"],\"department\":[\"a\",\"b\"],"
                              "\"has_nextcloud\":[\"true\"],\"nextcloud_instance\":"
                              "[\"https://foggy.test\"],\"storage_gb\":[\"100\"]}",
                              0, NULL);
    assert_true(json_equal(merged, want));
    json_decref(merged);

    /* Nothing subscribed: every owned attribute goes, foreign ones stay. */
    assert_int_equal(kc_attrs_merge(current, &o, NULL, &merged), 0);
    assert_int_equal(json_object_size(merged), 2);
    json_decref(merged);
    assert_int_equal(kc_attrs_merge(NULL, &o, desired, &merged), 0);
    assert_int_equal(json_object_size(merged), 3);
    json_decref(merged);

    json_t *foreign = json_loads("{\"locale\":\"fr\"}", 0, NULL);
    assert_int_equal(kc_attrs_merge(current, &o, foreign, &merged), USHER_EINVAL);
    assert_null(merged);
    json_t *nested = json_loads("{\"has_x\":{\"a\":1}}", 0, NULL);
    assert_int_equal(kc_attrs_merge(current, &o, nested, &merged), USHER_EINVAL);
    json_decref(foreign);
    json_decref(nested);
    json_decref(want);
    json_decref(desired);
    json_decref(current);
}

static void test_missing_report(void **state)
{
    (void)state;
    json_t *desired = json_loads("{\"has_a\":\"true\",\"has_b\":[\"x\",\"y\"],\"has_c\":\"1\","
                                 "\"has_d\":true}",
                                 0, NULL);
    json_t *actual = json_loads("{\"has_a\":[\"true\"],\"has_b\":[\"y\",\"x\"],\"has_c\":[\"2\"],"
                                "\"locale\":[\"de\"]}",
                                0, NULL);
    struct kc_attr_report r = {0};
    kc_attrs_missing(desired, actual, &r);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.names[0], "has_c");
    assert_string_equal(r.names[1], "has_d");
    kc_attr_report_cleanup(&r);
    assert_int_equal(r.count, 0);
    kc_attrs_missing(desired, NULL, &r);
    assert_int_equal(r.count, 4);
    kc_attr_report_cleanup(&r);
    json_decref(desired);
    json_decref(actual);
}

static void test_new_needs_configuration(void **state)
{
    (void)state;
    struct usher_config c;
    memset(&c, 0, sizeof c);
    c.keycloak_server_url = "http://kc.test";
    c.keycloak_realm = "usher";
    c.keycloak_admin_client_id = "usher-admin";
    c.keycloak_admin_client_secret = "";
    struct kc_admin *kc = (struct kc_admin *)1;
    assert_int_equal(kc_admin_new(&c, &kc), USHER_ECONFIG);
    assert_null(kc);
    c.keycloak_admin_client_secret = "s";
    assert_int_equal(kc_admin_new(&c, &kc), 0);
    json_t *u = NULL;
    struct kc_error e;
    assert_int_equal(kc_user_get(kc, "../../clients", &u, &e), USHER_EINVAL);
    assert_int_equal(kc_user_group_add(kc, "u1", "g/1", &e), USHER_EINVAL);
    assert_int_equal(kc_user_find_by_email(kc, "", &u, &e), USHER_EINVAL);
    char *group = NULL;
    assert_int_equal(kc_group_find(kc, "", &group, &e), USHER_EINVAL);
    assert_null(group);
    assert_int_equal(kc_user_send_update_password(kc, "u1", NULL, "https://x", 0, &e),
                     USHER_EINVAL);
    assert_int_equal(kc_admin_token_fetches(kc), 0);
    kc_admin_free(kc);
    kc_admin_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_from_location),
        cmocka_unit_test(test_error_parse),
        cmocka_unit_test(test_token_lifetime),
        cmocka_unit_test(test_user_pick_is_exact),
        cmocka_unit_test(test_group_pick),
        cmocka_unit_test(test_owned),
        cmocka_unit_test(test_merge_keeps_foreign_and_replaces_owned),
        cmocka_unit_test(test_missing_report),
        cmocka_unit_test(test_new_needs_configuration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
