import { JSONObjectResolver } from 'graphql-scalars';
import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { UserError } from '../graphql/user-error.js';

export enum PrincipalKindEnum {
  OPERATOR = 'OPERATOR',
  ISSUER = 'ISSUER',
  MERCHANT = 'MERCHANT',
  BILLER = 'BILLER',
  CARDHOLDER_APP = 'CARDHOLDER_APP',
}
registerEnumType(PrincipalKindEnum, { name: 'PrincipalKind', description: 'What kind of OAuth client is calling.' });

@ObjectType('Viewer', { description: 'The caller, as its access token says.' })
export class ViewerType {
  @Field(() => PrincipalKindEnum)
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
  @Field()
  clientId!: string;

  @Field(() => PrincipalKindEnum)
  kind!: PrincipalKindEnum;

  @Field()
  name!: string;

  @Field(() => [String])
  scopes!: string[];

  @Field({ description: 'client_secret_basic, private_key_jwt, or none (a cardholder app using PKCE).' })
  tokenEndpointAuthMethod!: string;

  @Field({ description: 'True when its access tokens must be DPoP-bound.' })
  dpopBound!: boolean;

  @Field(() => [String])
  redirectUris!: string[];

  @Field({ description: 'A disabled client gets no tokens, and its tokens are refused.' })
  disabled!: boolean;
}

@InputType()
export class CreateOAuthClientInput {
  @Field(() => PrincipalKindEnum)
  kind!: PrincipalKindEnum;

  @Field(() => ID, { nullable: true, description: 'Global id of the Merchant, Biller or CardCompany it acts for; omitted for an operator client.' })
  tenant?: string | null;

  @Field()
  name!: string;

  @Field(() => [String], { description: 'A subset of the scopes its kind may hold (docs/auth.md).' })
  scopes!: string[];

  @Field(() => JSONObjectResolver, { nullable: true, description: 'A JWK Set of public keys: the client authenticates with private_key_jwt instead of a secret.' })
  jwks?: Record<string, unknown> | null;

  @Field(() => [String], { nullable: true, description: 'Cardholder apps only: where the authorization code goes.' })
  redirectUris?: string[] | null;

  @Field({ nullable: true, description: 'Require DPoP-bound access tokens.' })
  dpopBound?: boolean;
}

@InputType()
export class DisableOAuthClientInput {
  @Field()
  clientId!: string;
}

@ObjectType()
export class DisableOAuthClientPayload {
  @Field(() => OAuthClientType, { nullable: true })
  client!: OAuthClientType | null;

  @Field(() => [UserError])
  userErrors!: UserError[];
}

@ObjectType()
export class CreateOAuthClientPayload {
  @Field(() => OAuthClientType, { nullable: true })
  client!: OAuthClientType | null;

  @Field(() => String, { nullable: true, description: 'Shown once: only its hash is kept.' })
  clientSecret!: string | null;

  @Field(() => [UserError])
  userErrors!: UserError[];
}
