/*
 * identity_keycloak.h — the provisioning identity provider (provisioning.h) on the Keycloak
 * Admin API. One client per process, created on first use from the configuration, so its
 * service-account token is shared by every thread.
 */
#ifndef USHER_DOMAIN_IDENTITY_KEYCLOAK_H
#define USHER_DOMAIN_IDENTITY_KEYCLOAK_H

#include "domain/provisioning.h"

struct usher_config;

/* Fills ops; USHER_ECONFIG when the Keycloak Admin API is not configured. */
int identity_keycloak_ops(const struct usher_config *cfg, struct identity_ops *ops);

struct expiry_identity;
/* Fills the final expiry's side of Keycloak (domain/expiry.h): delete a user, see whether one
 * exists. USHER_ECONFIG when the Keycloak Admin API is not configured. */
int identity_keycloak_expiry(const struct usher_config *cfg, struct expiry_identity *ops);

struct kc_admin;
/* The process's shared Admin API client (for calls beyond identity_ops, e.g. the Stripe
 * event handlers' find/create/enable); it lives as long as the process. */
int identity_keycloak_admin(const struct usher_config *cfg, struct kc_admin **out);

#endif
