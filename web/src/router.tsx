import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react';

// A small history router: the app's paths live under /app/ (the gateway's history fallback
// answers index.html for each of them).

export const BASE = '/app';

export interface Location {
  path: string;
  params: URLSearchParams;
}

function current(): Location {
  let path = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length) : window.location.pathname;
  if (!path.startsWith('/')) path = `/${path}`;
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return { path, params: new URLSearchParams(window.location.search) };
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = `${BASE}${to}`;
  if (options.replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  window.dispatchEvent(new Event('nexo:navigate'));
  window.scrollTo(0, 0);
}

export function useLocation(): Location {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const update = () => setLocation(current());
    window.addEventListener('popstate', update);
    window.addEventListener('nexo:navigate', update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('nexo:navigate', update);
    };
  }, []);
  return location;
}

/** The path and query of where the user is, for "log in and come back here". */
export function here(): string {
  const { path, params } = current();
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export function Link({ to, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }) {
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={`${BASE}${to}`} onClick={click} {...rest} />;
}
