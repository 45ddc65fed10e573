import { JSONObjectResolver } from 'graphql-scalars';
import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum PrincipalKindEnum {
  OPERATOR = 'OPERATOR',
  ISSUER = 'ISSUER',
  MERCHANT = 'MERCHANT',
  BILLER = 'BILLER',
  CARDHOLDER_APP = 'CARDHOLDER_APP',
}
registerEnumType(PrincipalKindEnum, {
  name: 'PrincipalKind',
  description: 'What kind of OAuth client is calling.',
  valuesConfig: {
    OPERATOR: { description: 'The platform operator: no tenant; client credentials.' },
    ISSUER: { description: 'A card company’s back end: its tenant is a CardCompany; client credentials.' },
    MERCHANT: { description: 'A merchant’s back end: its tenant is a Merchant; client credentials.' },
    BILLER: { description: 'A biller’s back end: its tenant is a Biller; client credentials.' },
    CARDHOLDER_APP: { description: 'An app acting for one cardholder: its tenant is the CardCompany that runs it; authorization code + PKCE, and the token names the cardholder.' },
  },
});

@ObjectType('Viewer', { description: 'The caller, as its access token says.' })
export class ViewerType {
  @Field(() => PrincipalKindEnum, { description: 'The kind of the OAuth client the token was issued to.' })
  kind!: PrincipalKindEnum;

  @Field({ description: 'The OAuth client id.' })
  clientId!: string;

  @Field(() => ID, { nullable: true, description: 'Global id of the tenant the client acts for (Merchant, Biller or CardCompany); null for the operator.' })
  tenantId!: string | null;

  @Field(() => ID, { nullable: true, description: 'For a cardholder app: the cardholder who consented.' })
  holderId!: string | null;

  @Field(() => [String], { description: 'The scopes the token carries.' })
  scopes!: string[];
}

@ObjectType('OAuthClient', { description: 'A registered OAuth client. Its secret is never shown again after creation.' })
export class OAuthClientType {
  @Field({ description: 'The OAuth `client_id`, e.g. `oc_merchant_…`.' })
  clientId!: string;

  @Field(() => PrincipalKindEnum, { description: 'What kind of principal the client is; decides its tenant type and the scopes it may hold.' })
  kind!: PrincipalKindEnum;

  @Field({ description: 'A name people recognise; shown on the consent page for cardholder apps.' })
  name!: string;

  @Field(() => [String], { description: 'The scopes the client is registered with; a token carries a subset of these (docs/auth.md#scopes).' })
  scopes!: string[];

  @Field({ description: 'client_secret_basic, private_key_jwt, or none (a sign-in client using PKCE: a cardholder app, or a party\'s console sign-in).' })
  tokenEndpointAuthMethod!: string;

  @Field({ description: 'True when its access tokens must be DPoP-bound.' })
  dpopBound!: boolean;

  @Field(() => [String], { description: 'Sign-in clients (cardholder apps, and parties\' console sign-in clients): the registered redirect URIs for the authorization code; empty for clients that get their own tokens.' })
  redirectUris!: string[];

  @Field({ description: 'A disabled client gets no tokens, and its tokens are refused.' })
  disabled!: boolean;

  @Field(() => ID, { nullable: true, description: 'Global id of the tenant the client acts for (Merchant, Biller or CardCompany); null for the operator’s.' })
  tenant!: string | null;

  @Field(() => DateTimeScalar, { description: 'When it was registered.' })
  createdAt!: Date;
}

@ObjectType('OAuthScope', { description: 'A scope a client may be registered with (docs/auth.md#scopes).' })
export class OAuthScopeType {
  @Field({ description: 'The scope, e.g. `payments:read`.' })
  name!: string;

  @Field({ description: 'What a token holding it may do.' })
  description!: string;
}

@ObjectType('ClientKindScopes', { description: 'The scopes a client of one kind may be registered with: createOAuthClient refuses any other (INVALID_INPUT).' })
export class ClientKindScopesType {
  @Field(() => PrincipalKindEnum, { description: 'The client kind.' })
  kind!: PrincipalKindEnum;

  @Field(() => [OAuthScopeType], { description: 'Its scopes, in the order docs/auth.md lists them.' })
  scopes!: OAuthScopeType[];
}

@InputType({ description: 'A new OAuth client: its kind, its tenant and the scopes it may ask for.' })
export class CreateOAuthClientInput {
  @Field(() => PrincipalKindEnum, { description: 'What kind of principal the client will be.' })
  kind!: PrincipalKindEnum;

  @Field(() => ID, { nullable: true, description: 'Global id of the Merchant, Biller or CardCompany it acts for; omitted for an operator client.' })
  tenant?: string | null;

  @Field({ description: 'A name people recognise, e.g. "Tea House back end".' })
  name!: string;

  @Field(() => [String], { description: 'A subset of the scopes its kind may hold (docs/auth.md).' })
  scopes!: string[];

  @Field(() => JSONObjectResolver, { nullable: true, description: 'A JWK Set of public keys: the client authenticates with private_key_jwt instead of a secret.' })
  jwks?: Record<string, unknown> | null;

  @Field(() => [String], { nullable: true, description: 'Where the authorization code goes: required for a cardholder app; on another kind it makes a sign-in client for its people (the web console: code + PKCE, no client credentials).' })
  redirectUris?: string[] | null;

  @Field({ nullable: true, description: 'Require DPoP-bound access tokens.' })
  dpopBound?: boolean;
}

@InputType({ description: 'Which OAuth client to disable.' })
export class DisableOAuthClientInput {
  @Field({ description: 'The OAuth `client_id` of the client.' })
  clientId!: string;
}

@ObjectType({ description: 'The client disabled, or why not.' })
export class DisableOAuthClientPayload {
  @Field(() => OAuthClientType, { nullable: true, description: 'The client, now disabled; null when refused.' })
  client!: OAuthClientType | null;

  @Field(() => [UserError], { description: 'Why the client was not disabled (NOT_FOUND); empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The client registered (with its secret, once), or why not.' })
export class CreateOAuthClientPayload {
  @Field(() => OAuthClientType, { nullable: true, description: 'The client registered; null when refused.' })
  client!: OAuthClientType | null;

  @Field(() => String, { nullable: true, description: 'Shown once: only its hash is kept.' })
  clientSecret!: string | null;

  @Field(() => [UserError], { description: 'Why the client was not registered (INVALID_INPUT, NOT_FOUND); empty on success.' })
  userErrors!: UserError[];
}

@ObjectType('PartyUser', { description: 'A person of a merchant, biller, card company or the operator who signs in to the web console, through one sign-in client of the party (docs/console.md#party-users).' })
export class PartyUserType {
  @Field(() => ID, { description: 'Global id.' })
  id!: string;

  @Field({ description: 'What the person types to sign in; unique across OneCard.' })
  username!: string;

  @Field({ description: 'How the console names the person.' })
  displayName!: string;

  @Field({ description: 'The OAuth `client_id` of the party\'s sign-in client the person signs in through; its kind and tenant make the token\'s principal.' })
  signInClient!: string;

  @Field({ description: 'An admin may make the party\'s other users (createPartyUser, signed in to the console).' })
  admin!: boolean;

  @Field({ description: 'True until the person has replaced the initial password with their own at the first sign-in.' })
  mustChangePassword!: boolean;

  @Field(() => DateTimeScalar, { description: 'When the user was made.' })
  createdAt!: Date;
}

@InputType({ description: 'A new console user of a party.' })
export class CreatePartyUserInput {
  @Field({ description: 'The OAuth `client_id` of the party\'s console sign-in client (a public client with the console\'s redirect URI; not a cardholder app).' })
  signInClient!: string;

  @Field({ description: '3 to 64 letters, digits, ".", "_", "-" or "@", starting with a letter or digit; unique across OneCard.' })
  username!: string;

  @Field({ description: 'How the console names the person (1 to 100 characters), e.g. "王芳 Billing clerk".' })
  displayName!: string;

  @Field({ nullable: true, defaultValue: false, description: 'Whether the person may make the party\'s other users. Default false.' })
  admin?: boolean;
}

@ObjectType({ description: 'The user made, with the initial password shown once, or why not.' })
export class CreatePartyUserPayload {
  @Field(() => PartyUserType, { nullable: true, description: 'The user; null when refused.' })
  user!: PartyUserType | null;

  @Field(() => String, { nullable: true, description: 'Shown once (only its hash is kept): hand it to the person; the first sign-in asks them to choose their own password.' })
  initialPassword!: string | null;

  @Field(() => [UserError], { description: 'Why the user was not made (NOT_FOUND: no such sign-in client of a party you may manage; FORBIDDEN_OPERATION: not an admin user; INVALID_INPUT; DUPLICATE_NAME: the user name is taken); empty on success.' })
  userErrors!: UserError[];
}
