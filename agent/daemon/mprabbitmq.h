/*
 * mprabbitmq.h: rabbitmq-c's headers under whichever names the installed version has
 *
 * rabbitmq-c 0.12 moved them to <rabbitmq-c/...> and 0.13+ deprecates the old top-level
 * names with a #warning (an error under -Werror); Debian 12's 0.11 has only the old ones.
 */
#pragma once

#if defined(__has_include) && __has_include(<rabbitmq-c/amqp.h>)
# include <rabbitmq-c/amqp.h>
# include <rabbitmq-c/ssl_socket.h>
# include <rabbitmq-c/tcp_socket.h>
#else
# include <amqp.h>
# include <amqp_ssl_socket.h>
# include <amqp_tcp_socket.h>
#endif
