//! Token refresh calls: Kiro desktop `refreshToken`, AWS SSO OIDC `CreateToken`, external IdP
//! `refresh_token` grant, and `List-Available-Profiles` for profileArn discovery.
