/** Who a dashboard request comes from: set on the request by the global guard on session routes. */
export interface SessionPrincipal {
  userId: string;
  workspaceId: string;
  role: 'owner' | 'member';
  email: string;
}

/** The session token itself: what logout needs to end it. */
export interface SessionTokenRef {
  /** The token's unique id (JWT `jti`). */
  id: string;
  /** When it expires, ms since the epoch. */
  expiresAt: number;
}
