export const KUMO_VERSION = '0.1.0';
