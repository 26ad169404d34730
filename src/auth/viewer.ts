/**
 * The viewer: the user a request acts for. Only `auth/` makes one, from a verified bearer token;
 * everything below the transport takes it as given and filters every query by its `userId`.
 */
export type Viewer = { userId: string };
