import { Migration } from '@mikro-orm/migrations';

/** OAuth 2.0: clients, the authorization server's storage, signing keys, demo cardholders. */
export class Migration20261125000004_auth extends Migration {
  override name = 'Migration20261125000004_auth';

  override up(): void {
    this.addSql(`
      create table oauth_client (
        client_id text primary key,
        kind text not null check (kind in ('OPERATOR','ISSUER','MERCHANT','BILLER','CARDHOLDER_APP')),
        tenant_id text,
        name text not null,
        scopes text[] not null,
        -- sha-256 of the secret (secrets are 256 random bits, so a fast hash is enough); null for
        -- public clients and for private_key_jwt clients
        secret_hash text,
        auth_method text not null check (auth_method in ('client_secret_basic','private_key_jwt','none')),
        jwks jsonb,
        redirect_uris text[] not null default '{}',
        dpop_bound boolean not null default false,
        disabled boolean not null default false,
        created_at timestamptz not null default now(),
        check ((auth_method = 'client_secret_basic') = (secret_hash is not null)),
        check ((auth_method = 'private_key_jwt') = (jwks is not null)),
        check (kind = 'OPERATOR' or tenant_id is not null)
      )`);
    // oidc-provider's models (access tokens, grants, interactions, sessions, ...), one table.
    this.addSql(`
      create table oidc_payload (
        id text not null,
        kind text not null,
        payload jsonb not null,
        grant_id text,
        user_code text,
        uid text,
        expires_at timestamptz,
        consumed_at timestamptz,
        primary key (kind, id)
      )`);
    this.addSql(`create index oidc_payload_grant_idx on oidc_payload (grant_id) where grant_id is not null`);
    this.addSql(`create index oidc_payload_uid_idx on oidc_payload (uid) where uid is not null`);
    this.addSql(`create index oidc_payload_user_code_idx on oidc_payload (user_code) where user_code is not null`);
    this.addSql(`create index oidc_payload_expires_idx on oidc_payload (expires_at)`);
    this.addSql(`
      create table oauth_signing_key (
        kid text primary key,
        -- the private JWK, AES-256-GCM encrypted with the key-encryption key
        encrypted_jwk text not null,
        public_jwk jsonb not null,
        status text not null check (status in ('ACTIVE','RETIRED')),
        created_at timestamptz not null default now(),
        retired_at timestamptz
      )`);
    this.addSql(`create unique index oauth_signing_key_one_active on oauth_signing_key (status) where status = 'ACTIVE'`);
    // Ids of DPoP proofs and client assertions already seen, so each is used once (RFC 9449 §11.1,
    // RFC 7523 §3); kept until they could no longer be accepted anyway.
    this.addSql(`
      create table seen_jti (
        jti text primary key,
        expires_at timestamptz not null
      )`);
    // JWT access tokens are self-contained, so oidc-provider cannot revoke them; we keep the revoked
    // ones here until they expire, and the API refuses them.
    this.addSql(`
      create table revoked_access_token (
        jti text primary key,
        client_id text not null,
        expires_at timestamptz not null,
        revoked_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table cardholder (
        id uuid primary key,
        username text not null unique,
        password_hash text not null,
        display_name text not null,
        created_at timestamptz not null default now()
      )`);
  }
}
