/** Page routes: the label of web vitals and log records (`page.route`). */

/** The page route: the path with numeric ids, UUIDs and long hex or base64-like segments replaced by `:id`. */
export function defaultRoute(location: Pick<Location, 'pathname'>): string {
  return (
    location.pathname
      .split('/')
      .map((seg) =>
        /^\d+$/.test(seg) ||
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg) ||
        /^[0-9a-f]{16,}$/i.test(seg) ||
        (seg.length >= 20 && /^[A-Za-z0-9_-]+$/.test(seg) && /\d/.test(seg))
          ? ':id'
          : seg,
      )
      .join('/') || '/'
  );
}
