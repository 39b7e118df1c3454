/*
 * gust/map.h - a string-keyed hash map (open chaining, grows by doubling).
 * Not thread-safe: the owner locks. Keys are copied; values are the caller's.
 */
#ifndef GUST_MAP_H
#define GUST_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gust_map_entry {
	char *key;
	void *value;
	struct gust_map_entry *next;
} gust_map_entry;

typedef struct gust_map {
	gust_map_entry **buckets;
	size_t nbuckets;
	size_t count;
} gust_map;

/* Zeroed memory is an empty map. */
void *gust_map_get(const gust_map *m, const char *key);
/* The same, with hash = gust_hash64(key, strlen(key)) computed once by a
 * caller that looks the same key up in many maps. */
void *gust_map_get_hashed(const gust_map *m, const char *key, uint64_t hash);
/* Sets key to value; returns the previous value (or NULL) for the caller to free. */
void *gust_map_put(gust_map *m, const char *key, void *value);
/* Removes key; returns its value (or NULL). */
void *gust_map_del(gust_map *m, const char *key);
/* Calls fn for each entry; fn returning non-zero removes the entry (fn frees the value). */
void gust_map_filter(gust_map *m, int (*fn)(void *arg, const char *key, void *value), void *arg);
/* Frees the table (not the values: empty it with gust_map_filter first). */
void gust_map_free(gust_map *m);

#endif
