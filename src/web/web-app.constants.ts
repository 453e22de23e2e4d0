/** Where the dashboard is served; the SPA's own router lives under it. */
export const WEB_APP_ROOT = '/app';
