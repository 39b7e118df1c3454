/* map.c - string-keyed hash map. */
#include <stdlib.h>
#include <string.h>

#include "gust/map.h"
#include "gust/util.h"

static size_t map_slot(const gust_map *m, const char *key)
{
	return (size_t)(gust_hash64(key, strlen(key)) & (m->nbuckets - 1));
}

void *gust_map_get(const gust_map *m, const char *key)
{
	return gust_map_get_hashed(m, key, gust_hash64(key, strlen(key)));
}

void *gust_map_get_hashed(const gust_map *m, const char *key, uint64_t hash)
{
	if (m->nbuckets == 0)
		return NULL;
	for (gust_map_entry *e = m->buckets[hash & (m->nbuckets - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->value;
	return NULL;
}

static void map_grow(gust_map *m)
{
	size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
	gust_map_entry **b = gust_xcalloc(nb, sizeof(*b));
	for (size_t i = 0; i < m->nbuckets; i++) {
		gust_map_entry *e = m->buckets[i];
		while (e) {
			gust_map_entry *next = e->next;
			size_t s = (size_t)(gust_hash64(e->key, strlen(e->key)) & (nb - 1));
			e->next = b[s];
			b[s] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

void *gust_map_put(gust_map *m, const char *key, void *value)
{
	if (m->count + 1 > m->nbuckets)
		map_grow(m);
	size_t s = map_slot(m, key);
	for (gust_map_entry *e = m->buckets[s]; e; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			void *old = e->value;
			e->value = value;
			return old;
		}
	}
	gust_map_entry *e = gust_xmalloc(sizeof(*e));
	e->key = gust_xstrdup(key);
	e->value = value;
	e->next = m->buckets[s];
	m->buckets[s] = e;
	m->count++;
	return NULL;
}

void *gust_map_del(gust_map *m, const char *key)
{
	if (m->nbuckets == 0)
		return NULL;
	for (gust_map_entry **pp = &m->buckets[map_slot(m, key)]; *pp; pp = &(*pp)->next) {
		gust_map_entry *e = *pp;
		if (strcmp(e->key, key) == 0) {
			void *v = e->value;
			*pp = e->next;
			free(e->key);
			free(e);
			m->count--;
			return v;
		}
	}
	return NULL;
}

void gust_map_filter(gust_map *m, int (*fn)(void *arg, const char *key, void *value), void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		gust_map_entry **pp = &m->buckets[i];
		while (*pp) {
			gust_map_entry *e = *pp;
			if (fn(arg, e->key, e->value)) {
				*pp = e->next;
				free(e->key);
				free(e);
				m->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void gust_map_free(gust_map *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		gust_map_entry *e = m->buckets[i];
		while (e) {
			gust_map_entry *n = e->next;
			free(e->key);
			free(e);
			e = n;
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = m->count = 0;
}
