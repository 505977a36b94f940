// Package store is the device update service's embedded database: the
// catalog of update rules, imported updates and their files, test devices,
// local accounts, the device inventory and the catalog history. It is the
// only package that imports go.etcd.io/bbolt; no bolt transaction leaves it.
//
// (The full explanation of layout, atomicity and group commit follows once
// the implementation is complete.)
package store
