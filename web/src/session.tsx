import { createContext, useContext } from 'react';
import type { Session } from './api';

export interface SessionContextValue {
  session: Session;
  /** reloads the session (balance, role) after a change */
  refresh: () => void;
}

export const SessionContext = createContext<SessionContextValue | null>(null);

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside a signed-in page');
  return value;
}
